"""File trees an image folder can come in: a directory, a ``.zip``, or a ``.tar`` / ``.tar.gz`` / ``.tgz``.

Archives are read in place, never extracted. Every member is checked when the archive is listed, like
a download (:func:`reslab.data.download.check_member_name`): no absolute paths, no ``..``, no links or
device files; an unsafe member refuses the whole archive with a :class:`DataError` naming it.

Reading members happens in DataLoader worker processes: each process opens its own handle to the
archive (a ``zipfile.ZipFile`` must not be shared across a fork), and a tree pickles without it.
An uncompressed tar is indexed once (each member's data offset) and read with a plain seek. A
compressed tar (``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) has no random access: reading one
member means decompressing everything before it, so it can only be read front to back
(:meth:`FileTree.iter_bytes`), which is what the array cache does.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ...errors import DataError
from ..download import check_member_name

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
#: folders that archivers add and that never hold a class (macOS resource forks)
IGNORED_DIRS = frozenset({"__MACOSX"})
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def is_archive(path: Path) -> bool:
    """Whether ``path`` names a file with an archive suffix this module reads."""
    name = path.name.lower()
    return path.is_file() and name.endswith(ARCHIVE_SUFFIXES)


def hidden(rel: str) -> bool:
    """A path with a hidden part (``.x``) or inside an archiver's metadata folder."""
    return any(part.startswith(".") or part in IGNORED_DIRS for part in rel.split("/"))


class FileTree:
    """The files under a root, by relative POSIX path, and how to read them.

    Attributes:
        root: the directory or archive.
        kind: ``"dir"``, ``"zip"`` or ``"tar"``.
        files: relative path -> a stamp that changes when the file does (size plus mtime or CRC).
        dirs: every folder (relative path), including those only implied by file paths.
        random_access: False for a compressed tar (read it with :meth:`iter_bytes`).
    """

    kind = "dir"
    random_access = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, tuple[Any, ...]] = {}
        self.dirs: set[str] = set()

    def _add_file(self, rel: str, stamp: tuple[Any, ...]) -> None:
        self.files[rel] = stamp
        parent = PurePosixPath(rel).parent
        while str(parent) not in (".", ""):
            self.dirs.add(str(parent))
            parent = parent.parent

    def subdirs(self, rel: str = "") -> list[str]:
        """Sorted names of the visible folders directly inside ``rel`` ("" = the top)."""
        prefix = f"{rel}/" if rel else ""
        out = {d[len(prefix) :] for d in self.dirs if d.startswith(prefix) and "/" not in d[len(prefix) :]}
        return sorted(name for name in out if name and not hidden(name))

    def display(self, rel: str) -> str:
        """How to name a file in a message: its path, or ``archive:member``."""
        return str(self.root / rel) if self.kind == "dir" else f"{self.root}:{rel}"

    def open(self, rel: str) -> str | IO[bytes]:
        """Something Pillow can open: a path for a directory, the member's bytes for an archive."""
        return str(self.root / rel)

    def iter_bytes(self, rels: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """``(rel, bytes)`` of the wanted files, in the tree's own order (sequential for archives)."""
        for rel in rels:
            with open(self.root / rel, "rb") as f:
                yield rel, f.read()

    def __getstate__(self) -> dict[str, Any]:
        # Open handles never travel to another process: each opens its own.
        state = dict(self.__dict__)
        state.pop("_handle", None)
        state.pop("_pid", None)
        return state


class DirectoryTree(FileTree):
    """A folder on disk (hidden files and folders are left out)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not hidden(d))
            rel_dir = Path(dirpath).relative_to(root).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir
            if rel_dir:
                self.dirs.add(rel_dir)
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                st = os.stat(os.path.join(dirpath, name))
                self._add_file(f"{rel_dir}/{name}" if rel_dir else name, (st.st_size, st.st_mtime_ns))


class _ArchiveTree(FileTree):
    def _handle_for_process(self) -> Any:
        # One handle per process: DataLoader workers forked from a parent must not share its handle.
        if getattr(self, "_pid", None) != os.getpid():
            self._handle = self._open_handle()
            self._pid = os.getpid()
        return self._handle

    def _open_handle(self) -> Any:
        raise NotImplementedError


class ZipTree(_ArchiveTree):
    """A .zip archive, read member by member without extracting it."""

    kind = "zip"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        try:
            with zipfile.ZipFile(root) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(f"cannot read zip archive {root}: {exc}") from exc
        for info in infos:
            name = info.filename
            check_member_name(name.rstrip("/"), root)
            # Unix file type bits, when the archiver recorded them (0: a plain file, as Windows zips have)
            file_type = stat.S_IFMT(info.external_attr >> 16)
            if file_type and file_type not in (stat.S_IFREG, stat.S_IFDIR):
                raise DataError(
                    f"refusing to read {root}: member {name!r} is a link or special file, not a file or folder"
                )
            if hidden(name.rstrip("/")):
                continue
            if info.is_dir():
                self.dirs.add(name.rstrip("/"))
            else:
                self._add_file(name, (info.file_size, info.CRC))

    def _open_handle(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(self.root)

    def open(self, rel: str) -> IO[bytes]:
        try:
            return io.BytesIO(self._handle_for_process().read(rel))
        except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
            raise DataError(f"cannot read {self.display(rel)}: {exc}") from exc

    def iter_bytes(self, rels: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        for rel in rels:
            yield rel, self.open(rel).getvalue()  # type: ignore[attr-defined]


class TarTree(_ArchiveTree):
    """A tar archive. Uncompressed: random access through an index of data offsets. Compressed: front to
    back only (see the module docstring)."""

    kind = "tar"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        with open(root, "rb") as f:
            magic = f.read(6)
        self.random_access = not magic.startswith(_COMPRESSED_MAGIC)
        self._offsets: dict[str, tuple[int, int]] = {}
        try:
            with tarfile.open(root, "r:*") as tar:
                for member in tar:  # one pass: also the one decompression of a .tar.gz listing
                    check_member_name(member.name.rstrip("/"), root)
                    if not (member.isfile() or member.isdir()):
                        raise DataError(
                            f"refusing to read {root}: member {member.name!r} is a link or special file, "
                            "not a file or folder"
                        )
                    name = member.name[2:] if member.name.startswith("./") else member.name
                    if not name or hidden(name.rstrip("/")):
                        continue
                    if member.isdir():
                        self.dirs.add(name.rstrip("/"))
                    else:
                        self._add_file(name, (member.size, int(member.mtime)))
                        self._offsets[name] = (member.offset_data, member.size)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"cannot read tar archive {root}: {exc}") from exc

    def _open_handle(self) -> IO[bytes]:
        return open(self.root, "rb")

    def open(self, rel: str) -> IO[bytes]:
        if not self.random_access:
            raise DataError(
                f"{self.root} is a compressed tar, which cannot be read one image at a time; "
                "use the array cache (--data-arg cache=true), or repack it as .zip or uncompressed .tar"
            )
        offset, size = self._offsets[rel]
        f = self._handle_for_process()
        f.seek(offset)
        data = f.read(size)
        if len(data) != size:
            raise DataError(f"cannot read {self.display(rel)}: the archive is truncated")
        return io.BytesIO(data)

    def iter_bytes(self, rels: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        wanted = set(rels)
        if self.random_access:
            for rel in sorted(wanted, key=lambda r: self._offsets[r][0]):
                yield rel, self.open(rel).getvalue()  # type: ignore[attr-defined]
            return
        try:
            with tarfile.open(self.root, "r:*") as tar:
                for member in tar:
                    name = member.name[2:] if member.name.startswith("./") else member.name
                    if name in wanted and member.isfile():
                        f = tar.extractfile(member)
                        yield name, f.read() if f is not None else b""
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"cannot read tar archive {self.root}: {exc}") from exc


def open_tree(root: Path) -> FileTree:
    """The :class:`FileTree` of a directory or an archive (by suffix).

    Raises:
        DataError: an unreadable archive, or an unsafe member (named).
    """
    if root.is_dir():
        return DirectoryTree(root)
    name = root.name.lower()
    if name.endswith(".zip"):
        return ZipTree(root)
    return TarTree(root)
