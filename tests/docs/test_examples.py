"""The documentation's runnable examples: every code block marked ``<!-- run -->`` is executed, page by page,
and its output compared with the page's (the rule: ``tests/docs/runnable.py``, docs/development.md)."""

from __future__ import annotations

import textwrap

import pytest

from .runnable import DOCS, Block, DocsError, check_block, find_blocks, output_matches, prepare, shared_paths

PAGES = sorted(p for p in DOCS.rglob("*.md") if find_blocks(p))


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_the_page_runs_as_shown(page, tmp_path):
    workdir = tmp_path / "work"
    env = prepare(workdir)
    for block in find_blocks(page):
        missing = [p for p in shared_paths(block.code) if not (workdir / p).exists()]
        if missing:  # the blocks before it have run and passed
            pytest.skip(f"{block.where} needs {', '.join(missing)}, which is absent (shared/ beside the checkout)")
        check_block(block, workdir, env)


def test_the_pages_have_runnable_blocks():
    """The marker is found where the pages use it (a typo in the rule would silently run nothing)."""
    names = {str(p.relative_to(DOCS)) for p in PAGES}
    assert {"quickstart.md", "reference/run-directory.md", "reference/api.md"} <= names
    quickstart = find_blocks(DOCS / "quickstart.md")
    assert [b.lang for b in quickstart[:3]] == ["bash", "bash", "bash"]
    assert quickstart[0].code == "reslab list 'resnet2*'" and quickstart[0].expected.startswith("name")
    assert quickstart[2].timeout == 120


# -- the rule itself ----------------------------------------------------------------------------------------
def test_ellipsis_rule():
    printed = "epoch 1/2 | 1,234 img/s | 0.7s\nepoch 2/2 | 998 img/s | 0.9s\ndone  \n\n"
    assert output_matches("epoch 1/2 | ... img/s | ...s\nepoch 2/2 | ... img/s | ...s\ndone", printed)
    assert output_matches("epoch 1/2 ...\n...\ndone", printed)  # a line of ... : any lines
    assert output_matches("...\ndone", printed)
    assert output_matches("epoch 1/2 | 1,234 img/s | 0.7s\n...\nepoch 2/2 | 998 img/s | 0.9s\ndone", printed)
    assert not output_matches("epoch 1/2 ...\ndone", printed)  # an inline ... stays within its line
    assert not output_matches("epoch 1/2 | ... img/s | ...s", printed)  # the rest must match too
    assert not output_matches("epoch 1/2 | 1,234 img/s | 0.8s\n...", printed)
    assert not output_matches("a (b) [c]", "a xbx [c]")  # everything but ... is literal
    assert output_matches("", "\n\n") and not output_matches("", "something")


def _page(tmp_path, text: str):
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent(text))
    return page


def test_markers_and_expected_output_are_read(tmp_path):
    page = _page(
        tmp_path,
        """\
        # t
        <!-- run timeout=5 status=2 -->
        ```bash
        reslab list nothing
        ```

        ```text
        no model matches 'nothing'
        ```

        ````markdown
        <!-- run -->
        ```bash
        shown as an example, never run
        ```
        ````

        <!-- run -->
        ```python
        print(1)
        ```
        """,
    )
    blocks = find_blocks(page)
    assert [(b.line, b.lang, b.timeout, b.status, b.expected) for b in blocks] == [
        (3, "bash", 5, 2, "no model matches 'nothing'"),
        (19, "python", 60, 0, None),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("<!-- run -->\nplain text\n", ":2: expected a fenced code block"),
        ("<!-- run -->\n```console\n$ x\n```\n", ":2: a block marked to run must be bash or python"),
        ("<!-- run fast -->\n```bash\nx\n```\n", ":1: malformed run marker"),
        ("<!-- run retries=2 -->\n```bash\nx\n```\n", ":2: unknown run option 'retries'"),
    ],
)
def test_a_malformed_block_names_its_line(tmp_path, text, message):
    with pytest.raises(DocsError, match=f"page.md{message}"):
        find_blocks(_page(tmp_path, text))


def test_a_failing_block_names_the_page_and_line(tmp_path):
    workdir = tmp_path / "work"
    env = prepare(workdir)
    page = DOCS / "quickstart.md"
    wrong = Block(page=page, line=12, lang="bash", code="reslab list 'resnet2*'", expected="name params\nresnet21")
    with pytest.raises(AssertionError, match=r"docs/quickstart.md:12: the output differs"):
        check_block(wrong, workdir, env)
    failing = Block(page=page, line=40, lang="bash", code="reslab list nothing")
    with pytest.raises(AssertionError, match=r"docs/quickstart.md:40: exit status 1, expected 0"):
        check_block(failing, workdir, env)
    slow = Block(page=page, line=50, lang="bash", code="sleep 5", timeout=0.5)
    with pytest.raises(AssertionError, match=r"docs/quickstart.md:50: still running after 0.5 s"):
        check_block(slow, workdir, env)
    check_block(Block(page=page, line=60, lang="bash", code="reslab list nothing", status=1), workdir, env)
