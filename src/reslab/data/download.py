"""Fetching data files: HTTP(S) download with MD5 verification, and safe tar extraction.

A download goes to ``<file>.part`` and is renamed only once its MD5 matches, so a failed or tampered
download never sits where a reader would find it. Archives are checked member by member before anything
is written: only regular files and directories inside the destination are accepted (no absolute
paths, ``..``, links or device files), and on Pythons that have it (3.11.4+, 3.12+) extraction also
uses tarfile's ``filter="data"``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from ..checksum import file_digest
from ..errors import ChecksumError, DataError

log = logging.getLogger(__name__)

CHUNK = 1 << 20


def md5sum(path: str | os.PathLike[str]) -> str:
    """Hex MD5 of a file, read in chunks (the digest helper the weights cache shares)."""
    return file_digest(path, "md5")


def verify_md5(path: Path, expected: str) -> None:
    """Raise :class:`ChecksumError` (naming the file, expected and actual MD5) if they differ."""
    got = md5sum(path)
    if got.lower() != expected.lower():
        raise ChecksumError(f"checksum mismatch for {path}: expected MD5 {expected.lower()}, got {got}")


def download_file(url: str, dest: str | os.PathLike[str], md5: str | None, *, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and check its MD5.

    An existing ``dest`` with the right MD5 is reused without a download.

    Args:
        url: http(s) or file URL.
        dest: target file; parent directories are created.
        md5: expected hex MD5, or None to skip the check.
        timeout: socket timeout in seconds.

    Returns:
        ``dest`` as a Path.

    Raises:
        DataError: the download failed (names the URL and where to put the file by hand).
        ChecksumError: the MD5 differs; the downloaded bytes are deleted.
    """
    dest = Path(dest)
    if dest.is_file() and md5 is not None:
        if md5sum(dest).lower() == md5.lower():
            return dest
        log.warning("%s exists but its MD5 is not %s; downloading it again", dest, md5)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s to %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out, CHUNK)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        raise DataError(f"could not download {url}: {exc}; download it by hand to {dest}") from exc
    if md5 is not None:
        got = md5sum(part)
        if got.lower() != md5.lower():
            part.unlink(missing_ok=True)  # a bad download is never used or extracted
            raise ChecksumError(
                f"checksum mismatch for {dest} downloaded from {url}: expected MD5 {md5.lower()}, got {got}; "
                "the download was deleted"
            )
    os.replace(part, dest)
    return dest


def check_member_name(name: str, archive: Path, verb: str = "read") -> None:
    """Refuse an archive member whose name is absolute, has ``..`` or a drive (one line naming it).

    Raises:
        DataError: the unsafe member, named.
    """
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or os.path.isabs(name) or ".." in parts or (parts and ":" in parts[0]):
        raise DataError(f"refusing to {verb} {archive}: member {name!r} points outside the destination")


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    check_member_name(name, archive, "extract")
    if not (member.isfile() or member.isdir()):
        raise DataError(
            f"refusing to extract {archive}: member {name!r} is a link or special file, not a file or folder"
        )


def extract_tar(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Extract a (compressed) tar archive into ``dest`` after checking every member.

    Raises:
        DataError: the archive is unreadable, or a member is unsafe (absolute, ``..``, link, device);
            nothing is extracted in that case.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # Python < 3.11.4: the member checks above are the filter
                tar.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"cannot extract {archive}: {exc}") from exc
    return dest


def download_and_extract(url: str, root: str | os.PathLike[str], md5: str | None, filename: str | None = None) -> Path:
    """Download an archive into ``root`` (MD5-checked), extract it there, and return the archive path."""
    root = Path(root)
    name = filename or url.rstrip("/").rsplit("/", 1)[-1]
    archive = download_file(url, root / name, md5)
    extract_tar(archive, root)
    return archive
