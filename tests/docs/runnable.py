"""The documentation's runnable code blocks: finding them, running them, comparing their output.

The rule (docs/development.md, "Runnable examples"):

- ``<!-- run -->`` alone on the line before a ```` ```bash ```` or ```` ```python ```` fence marks the block to
  run; ``<!-- run timeout=120 status=2 -->`` sets its time limit in seconds (default 60) and the exit status
  it must end with (default 0). The comment is invisible on the rendered page.
- The blocks of one page run in order, in one fresh working directory (a later block sees the files an
  earlier one wrote), with ``reslab`` and ``python`` meaning this checkout's (``sys.executable -m reslab``,
  ``PYTHONPATH`` = the tree's ``src``), reslab's caches in temporary folders, and ``../shared`` reaching the
  ``shared/`` folder beside the checkout. A block that names ``../shared/...`` is skipped, with the path as
  the reason, where that path is absent.
- A ```` ```text ```` fence that follows the block (blank lines between them at most) is its expected output:
  stdout and stderr together, as a terminal shows them. Trailing spaces and leading / trailing blank lines do
  not count. ``...`` is the ellipsis: a line that is only ``...`` matches any number of lines (none
  included); ``...`` inside a line matches any text within that line. Use it for what changes from run to
  run (timings, images per second, accuracies of a short run, paths under a temporary folder).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SHARED = ROOT.parent / "shared"
DEFAULT_TIMEOUT = 60
LANGUAGES = ("bash", "python")

MARKER = re.compile(r"^<!--\s*run(?P<options>(?:\s+\w+=\S+)*)\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<lang>[\w-]*)")


class DocsError(Exception):
    """A malformed marker or block, naming the page and line."""


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    timeout: float = DEFAULT_TIMEOUT
    status: int = 0
    expected: str | None = None

    @property
    def where(self) -> str:
        return f"{page_name(self.page)}:{self.line}"


def page_name(page: Path) -> str:
    """How messages name a page: relative to the checkout (``docs/quickstart.md``) where it is inside it."""
    try:
        return str(page.resolve().relative_to(ROOT))
    except ValueError:
        return str(page)


def _fence(lines: list[str], start: int, where: str) -> tuple[str, str, int]:
    """The fence opening at ``lines[start]``: ``(language, body, index after the closing fence)``."""
    match = FENCE.match(lines[start])
    if not match:
        raise DocsError(f"{where}: expected a fenced code block")
    fence = match.group("fence")
    for end in range(start + 1, len(lines)):
        if lines[end].startswith(fence) and not lines[end].strip("`").strip():
            return match.group("lang"), "\n".join(lines[start + 1 : end]), end + 1
    raise DocsError(f"{where}: the code block is never closed")


def find_blocks(page: Path) -> list[Block]:
    """The blocks of ``page`` marked to run, with their options and expected output."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        if not marker:
            if re.match(r"<!--\s*run\b", lines[i]):
                raise DocsError(f"{page_name(page)}:{i + 1}: malformed run marker {lines[i].strip()!r}")
            if FENCE.match(lines[i].lstrip()):  # a block not marked to run (it may show a marker as an example)
                _, _, i = _fence([line.lstrip() for line in lines], i, f"{page_name(page)}:{i + 1}")
            else:
                i += 1
            continue
        where = f"{page_name(page)}:{i + 2}"
        if i + 1 >= len(lines):
            raise DocsError(f"{where}: a run marker must be followed by a code block")
        lang, body, after = _fence(lines, i + 1, where)
        if lang not in LANGUAGES:
            raise DocsError(f"{where}: a block marked to run must be {' or '.join(LANGUAGES)}, not {lang!r}")
        block = Block(page=page, line=i + 2, lang=lang, code=body)
        for option in marker.group("options").split():
            key, _, value = option.partition("=")
            if key == "timeout":
                block.timeout = float(value)
            elif key == "status":
                block.status = int(value)
            else:
                raise DocsError(f"{where}: unknown run option {key!r} (timeout=SECONDS, status=N)")
        j = after
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j < len(lines) and FENCE.match(lines[j]) and FENCE.match(lines[j]).group("lang") == "text":
            _, block.expected, after = _fence(lines, j, f"{page_name(page)}:{j + 1}")
        blocks.append(block)
        i = after
    return blocks


def pages_with_blocks() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if find_blocks(p))


# -- the output rule ----------------------------------------------------------------------------------------
def _clean(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _line_matches(pattern: str, line: str) -> bool:
    regex = ".*?".join(re.escape(part) for part in pattern.split("..."))
    return re.fullmatch(regex, line) is not None


def output_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows, under the ellipsis rule."""
    want, got = _clean(expected), _clean(actual)
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if i == len(want):
                result = j == len(got)
            elif want[i] == "...":
                result = match(i + 1, j) or (j < len(got) and match(i, j + 1))
            else:
                result = j < len(got) and _line_matches(want[i], got[j]) and match(i + 1, j + 1)
            memo[(i, j)] = result
        return memo[(i, j)]

    return match(0, 0)


# -- running ------------------------------------------------------------------------------------------------
def shared_paths(code: str) -> list[str]:
    """The ``../shared/...`` paths a block names."""
    return sorted(set(re.findall(r"\.\./shared/[\w./-]*\w", code)))


def prepare(workdir: Path) -> dict[str, str]:
    """Set up ``workdir`` (the page's working directory, ``workdir.parent`` its scratch space) and return the
    environment its blocks run in."""
    scratch = workdir.parent
    workdir.mkdir(parents=True, exist_ok=True)
    if SHARED.exists() and not (scratch / "shared").exists():
        (scratch / "shared").symlink_to(SHARED, target_is_directory=True)
    bin_dir = scratch / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, command in (("reslab", f"{shlex.quote(sys.executable)} -m reslab"), ("python", sys.executable)):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        shim.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT / "src"),
        RESLAB_HOME=str(scratch / "reslab-home"),
        TORCH_HOME=str(scratch / "torch-home"),
        RESLAB_CACHE_DIR=str(scratch / "array-cache"),
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
        COLUMNS="120",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_block(block: Block, workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if block.lang == "python":
        script = workdir / f".block-{block.line}.py"
        script.write_text(block.code + "\n")
        argv = [sys.executable, script.name]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.code] if block.status == 0 else ["bash", "-c", block.code]
    return subprocess.run(
        argv,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=block.timeout,
    )


def check_block(block: Block, workdir: Path, env: dict[str, str]) -> None:
    """Run ``block``; raise AssertionError naming its page and line where it fails, times out or prints
    other than its expected output."""
    try:
        proc = run_block(block, workdir, env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{block.where}: still running after {block.timeout:g} s (timeout=)") from e
    if proc.returncode != block.status:
        raise AssertionError(
            f"{block.where}: exit status {proc.returncode}, expected {block.status}; output:\n{proc.stdout}"
        )
    if block.expected is not None and not output_matches(block.expected, proc.stdout):
        raise AssertionError(
            f"{block.where}: the output differs from the page's (`...` matches anything).\n"
            f"--- the page shows:\n{block.expected}\n--- the command printed:\n{proc.stdout}"
        )
