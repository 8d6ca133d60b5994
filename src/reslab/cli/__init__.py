"""The ``reslab`` command line: argument parsing and dispatch only; every command calls the library.

Each command module exposes ``register(subparsers)``, which adds its sub-command and sets
``func(args) -> int`` as the parser default. Errors of type :class:`reslab.ReslabError` print on one
line (``reslab: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ReslabError

COMMAND_MODULES = ("models", "train", "weights", "reproduce", "visualize", "report", "export", "bench")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="reslab", description="Classic image-classification CNNs, centred on residual networks."
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"reslab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:  # a command module not written yet
            if e.name != f"{__name__}.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ReslabError as e:
        # one write of the whole line: under torchrun every rank reports its error to the same stderr, and
        # print's separate write of the newline let two ranks' lines run together
        sys.stderr.write(f"reslab: error: {e}\n")
        sys.stderr.flush()
        return 2
    except KeyboardInterrupt:
        print("reslab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
