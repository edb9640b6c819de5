"""``movierec download`` and ``movierec datasets``: the MovieLens archives, fetched and listed."""

from __future__ import annotations

import argparse

import pandas as pd

from movierec.cli._output import markdown_table

__all__ = ["datasets_command", "download_command"]


def download_command(args: argparse.Namespace) -> int:
    """Download one archive into the data folder (verified, atomic); return the exit code."""
    from movierec.data.movielens import download_movielens, is_present

    present = is_present(args.name, args.data_home)
    path = download_movielens(args.name, data_home=args.data_home, force=args.force)
    print(f"{args.name}: {path}" + (" (already present)" if present and not args.force else ""))
    return 0


def datasets_command(args: argparse.Namespace) -> int:
    """List the archives movierec knows and which are present; return the exit code."""
    from movierec.data._movielens._registry import archive_url
    from movierec.data.movielens import data_home, is_present, known_datasets

    home = data_home(args.data_home)
    rows = []
    for name in known_datasets():
        present = is_present(name, args.data_home)
        rows.append({"dataset": name, "present": "yes" if present else "no",
                     "source": "" if present else archive_url(name)})
    table = pd.DataFrame(rows).set_index("dataset")
    print(f"data folder: {home}")
    print(markdown_table(table))
    return 0
