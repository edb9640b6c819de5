"""``movierec serve``: a kept model behind the JSON HTTP API ([`movierec.serve`][movierec.serve])."""

from __future__ import annotations

import argparse

__all__ = ["serve_command"]


def serve_command(args: argparse.Namespace) -> int:
    """Serve a kept model over HTTP until interrupted; return the exit code.

    A missing model folder raises ``FileNotFoundError`` naming it, a taken port ``OSError("cannot
    listen on HOST:PORT: ...")`` before the model loads: each one line and exit 1 (movierec.cli.main).
    """
    from movierec.serve import run

    run(args.model, args.host, args.port)
    return 0
