"""``movierec serve``: a kept model behind the JSON HTTP API ([`movierec.serve`][movierec.serve])."""

from __future__ import annotations

import argparse

from movierec.cli._output import one_line

__all__ = ["serve_command"]


def serve_command(args: argparse.Namespace) -> int:
    """Serve a kept model over HTTP until interrupted; return the exit code."""
    from movierec.serve import run

    try:
        run(args.model, args.host, args.port)
    except OSError as err:  # the port is taken, or the host cannot be bound
        raise ValueError(f"cannot serve on {args.host}:{args.port}: {one_line(err)}") from err
    return 0
