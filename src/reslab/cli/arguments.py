"""The command line's shared argument types and set-up: one place for every command module.

Argument types raise ``argparse.ArgumentTypeError`` (argparse turns it into the one-line usage error);
:func:`one_line_errors` makes every parser print one line instead of its usage block.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import yaml

from ..errors import ConfigError
from ..training.config import AMP_MODES


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Bad flags give one line (not argparse's full usage block) and exit status 2."""

    def error(message: str):
        parser.exit(2, f"{parser.prog}: error: {message} (see `{parser.prog} --help`)\n")

    parser.error = error  # type: ignore[method-assign]


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as YAML (``widths=[8,16,32]``, ``zero_init_last=true``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"cannot read the value of {text!r} (YAML syntax)") from None


def whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (batch sizes, image counts)."""
    return whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (warm-up iterations, mistakes shown)."""
    return whole_number(text, 0)


def path_arg(text: str) -> str:
    """A path with ``~`` expanded (a quoted ``"~/data"`` reaches us unexpanded)."""
    return os.path.expanduser(text)


def check_output_dir(path: str, flag: str) -> None:
    """Refuse an existing non-directory where a directory will be written (before any work is done)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag} {path} is an existing file; {flag} takes a directory")


def check_output_file(path: str, flag: str, *, overwrite: bool = False, inputs: tuple[Any, ...] = ()) -> None:
    """Refuse, before any work, a file output that would destroy something: an existing directory, any of the
    command's ``inputs`` (an image, a checkpoint, a data file: never, with or without ``--overwrite``), and an
    existing file unless ``overwrite`` (``--overwrite``) is given.

    Raises:
        ConfigError: naming ``flag``, the path and the way out.
    """
    if os.path.isdir(path):
        raise ConfigError(f"{flag} {path} is a directory; {flag} takes a file name (e.g. {path.rstrip('/')}/grid.png)")
    if not os.path.exists(path):
        return
    for given in inputs:
        if given is not None and os.path.exists(given) and os.path.samefile(path, given):
            raise ConfigError(f"{flag} {path} is the input {given}: it is left as it is; choose another {flag}")
    if not overwrite:
        raise ConfigError(f"{flag} {path} exists; it is left as it is: choose another {flag} or pass --overwrite")


def amp_arg(text: str) -> str | None:
    text = text.strip().lower()
    if text in ("none", "off", "fp32", ""):
        return None
    if text not in AMP_MODES:
        raise argparse.ArgumentTypeError(f"--amp must be one of {', '.join(AMP_MODES)} or none, got {text!r}")
    return text


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each message (tests and tools replace it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(quiet: bool = False) -> None:
    """Log messages to stderr (warnings only with ``quiet``; the run's train.log still gets everything)."""
    logger = logging.getLogger("reslab")
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.setLevel(logging.INFO)
