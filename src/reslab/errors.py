"""reslab's exception types: every error a user can cause is one of these, with a message to act on.

The command line prints ``str(error)`` on one line and exits non-zero; library users can catch
:class:`ReslabError` (or the matching built-in base, e.g. ``ValueError``).
"""

from __future__ import annotations


class ReslabError(Exception):
    """Base class of every error reslab raises on bad input."""


class ConfigError(ReslabError, ValueError):
    """A bad argument, override, option combination or configuration file."""


class UnknownModelError(ConfigError):
    """A model name that is not in the registry."""


class InputShapeError(ReslabError, ValueError):
    """An input tensor whose shape the model cannot take (too small, wrong channel count)."""


class DataError(ReslabError, ValueError):
    """Missing, truncated or corrupt data (names the file)."""


class ChecksumError(DataError):
    """A downloaded file whose checksum does not match the expected one."""


class CheckpointError(ReslabError, ValueError):
    """A checkpoint that cannot be read or does not fit the model / data it is used with."""


class TrainingError(ReslabError, RuntimeError):
    """Training cannot go on (a non-finite loss, say); the last good checkpoint is kept."""


class ExportError(ReslabError, RuntimeError):
    """An exported model that fails its check against PyTorch, or a model a format cannot express."""
