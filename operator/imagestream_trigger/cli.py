"""Command line entry point (filled in by the operator issue)."""

from __future__ import annotations

import sys

from imagestream_trigger import __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--version"]:
        print(f"imagestream-trigger {__version__}")
        return 0
    print("usage: imagestream-trigger [--version]")
    return 0
