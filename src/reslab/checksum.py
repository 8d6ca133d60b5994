"""File digests and their verification, shared by the data downloads (MD5), the weights cache (SHA-256,
MD5) and the checkpoint reader (the CRC-32 of each member of torch's zip files). Imports no torch."""

from __future__ import annotations

import hashlib
import os
import zipfile

from .errors import ChecksumError

CHUNK = 1 << 20
ALGORITHMS = ("sha256", "md5")


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest (``sha256`` or ``md5``) of a file, read in chunks."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"hash algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    digest = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike[str], expected: str) -> str:
    """Check ``path`` against ``expected`` = ``"sha256:<hex>"`` or ``"md5:<hex>"``; a hex shorter than the full
    digest is a prefix (torch.hub's file-name convention, ``resnet50-0676ba61.pth``). Returns the digest.

    Raises:
        ChecksumError: the digest differs (one line: the file, the algorithm, expected and actual digest;
            the actual digest is also its ``got`` attribute).
    """
    algorithm, _, want = expected.partition(":")
    want = want.lower()
    got = file_digest(path, algorithm)
    if not want or not got.startswith(want):
        what = "prefix " if len(want) < len(got) else ""
        error = ChecksumError(f"checksum mismatch for {path}: expected {algorithm.upper()} {what}{want}, got {got}")
        error.got = got  # for callers that word their own message (the URL, what was done with the file)
        raise error
    return got


def zip_crc_failure(path: str | os.PathLike[str]) -> str | None:
    """Read every member of a zip archive (``torch.save``'s files are one) and check its CRC-32: the name of
    the first member whose bytes changed since it was written (flipped bits, a bad copy), with why, or None
    where every member checks out. A file that is not a readable zip archive is not judged here (None): its
    reader reports it.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                try:
                    with archive.open(member) as f:
                        while f.read(CHUNK):
                            pass
                except zipfile.BadZipFile as e:
                    return f"{member.filename} ({e})"
                except (OSError, EOFError, ValueError, NotImplementedError) as e:
                    return f"{member.filename} ({type(e).__name__}: {e})"
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return None
    return None
