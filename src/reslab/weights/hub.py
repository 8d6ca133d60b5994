"""The weights cache and downloader.

A published file is looked for under its published name in reslab's cache (``$RESLAB_HOME/weights``, default
``~/.cache/reslab/weights``) and in torch.hub's (``$TORCH_HOME/hub/checkpoints``, default
``~/.cache/torch/hub/checkpoints``), and used -- with no network access -- once its hash checks. Otherwise it
is downloaded into reslab's cache: into a temporary file in the same folder, checked (length, then hash),
then renamed into place, so an interrupted or tampered download never sits where a reader would find it.

torch.hub's ``download_url_to_file`` is not used for the transfer: it checks only SHA-256 prefixes (Keras
publishes MD5s) and keeps a body cut short by the server when no hash is asked for; the loop below is its
loop with both checks. Nothing here imports torch unless torch is already loaded (``reslab weights list``
and ``info`` stay quick).
"""

from __future__ import annotations

import http.client
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..checksum import verify_file
from ..errors import ChecksumError, DataError
from .registry import WeightsEntry

logger = logging.getLogger("reslab.weights")

CHUNK = 1 << 20
TIMEOUT_S = 60.0


def reslab_home() -> Path:
    """``$RESLAB_HOME``, else ``~/.cache/reslab``."""
    return Path(os.environ.get("RESLAB_HOME", "~/.cache/reslab")).expanduser()


def weights_dir() -> Path:
    """Where downloaded weights are kept: ``reslab_home() / "weights"``."""
    return reslab_home() / "weights"


def torch_hub_dir() -> Path:
    """torch.hub's checkpoint folder, ``torch.hub.get_dir() / "checkpoints"``; computed as torch.hub does
    (``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``) when torch is not
    loaded, so looking at the cache costs no torch import."""
    if "torch.hub" in sys.modules:
        return Path(sys.modules["torch.hub"].get_dir()).expanduser() / "checkpoints"
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def cache_dirs() -> list[Path]:
    """The folders looked in, in order: reslab's cache, then torch.hub's."""
    return [weights_dir(), torch_hub_dir()]


def cached_path(entry: WeightsEntry) -> Path | None:
    """The first cached copy of ``entry``'s file (by name; its hash is checked only when it is used)."""
    for folder in cache_dirs():
        path = folder / entry.file_name
        if path.is_file():
            return path
    return None


def _where_to_put(entry: WeightsEntry) -> str:
    folders = " or ".join(str(d) for d in cache_dirs())
    return f"put {entry.file_name} (from {entry.url}) into {folders}"


def fetch(entry: WeightsEntry, *, progress: bool = True) -> Path:
    """The local path of ``entry``'s file: a cached copy whose hash checks, else a fresh download into
    reslab's cache (with a progress bar when ``progress``).

    Raises:
        DataError: the download failed (offline, server error, cut short); the message names the file,
            both cache folders and the URL. Nothing partial is left behind.
        ChecksumError: the downloaded file's hash differs from the entry's; the file is deleted.
    """
    stale: list[str] = []
    for folder in cache_dirs():
        path = folder / entry.file_name
        if not path.is_file():
            continue
        try:
            verify_file(path, entry.hash)
            return path
        except ChecksumError as e:
            # never deleted here: it may be the user's own file (torch.hub's cache); a download replaces
            # reslab's copy atomically below
            logger.warning("%s; not using it", e)
            stale.append(str(e))
    try:
        return download_to_cache(entry, progress=progress)
    except DataError as e:
        if stale and not isinstance(e, ChecksumError):
            raise DataError(f"{e}; the cached copy is wrong too ({stale[0]})") from None
        raise


def download(entry: WeightsEntry, *, progress: bool = True) -> Path:
    """``entry``'s file in the cache, downloaded if it is not there with the right hash (``reslab weights
    download``). Same errors as :func:`fetch`."""
    return fetch(entry, progress=progress)


def download_to_cache(entry: WeightsEntry, *, progress: bool = True) -> Path:
    """Download ``entry.url`` into ``weights_dir() / entry.file_name`` atomically, checking the length the
    server announced and the entry's hash before the file is renamed into place."""
    dest = weights_dir() / entry.file_name
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.file_name}.", suffix=".partial", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            received, expected = _transfer(entry, out, progress)
        if expected is not None and received != expected:
            raise DataError(
                f"download of {entry.file_name} was cut short ({received} of {expected} bytes); "
                f"try again, or {_where_to_put(entry)}"
            )
        try:
            verify_file(tmp, entry.hash)
        except ChecksumError as e:
            raise ChecksumError(
                f"checksum mismatch for {entry.file_name} downloaded from {entry.url}: expected "
                f"{entry.hash_algorithm.upper()} {entry.hash_value}, got {e.got}; the download was deleted"
            ) from None
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)  # an interrupted or rejected download leaves nothing behind
    logger.info("%s: downloaded to %s", entry.name, dest)
    return dest


def _transfer(entry: WeightsEntry, out, progress: bool) -> tuple[int, int | None]:
    from tqdm import tqdm

    request = urllib.request.Request(entry.url, headers={"User-Agent": "reslab"})
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with tqdm(
                total=expected,
                disable=not progress,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=entry.file_name,
                file=sys.stderr,
            ) as bar:
                while block := response.read(CHUNK):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"cannot download {entry.name} ({reason}); offline? {_where_to_put(entry)}") from None
    return received, expected
