"""The reference pages generated from the code (tools/gen_docs.py) are up to date: each is rendered again in
memory and compared with the committed file."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "tools" / "gen_docs.py")
gen_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_docs)


@pytest.fixture(scope="module")
def sources():
    return gen_docs.sources()


@pytest.mark.parametrize("name", sorted(gen_docs.PAGES))
def test_the_generated_page_is_up_to_date(name, sources):
    committed = (DOCS / "reference" / name).read_text(encoding="utf-8")
    assert gen_docs.render(name, sources) == committed, f"docs/reference/{name} is stale: run `make docs-gen`"


def test_the_cli_page_has_every_command_and_flag(sources):
    page = gen_docs.render("cli.md", sources)
    seen = 0

    def walk(parser: argparse.ArgumentParser, prog: str):
        nonlocal seen
        assert f"`{prog}` {{#{prog.replace(' ', '-')}}}" in page, prog
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}`" in page, (prog, option)
                    seen += 1
        for name, _, sub in gen_docs._subparsers(parser):
            walk(sub, f"{prog} {name}")

    walk(sources.build_parser(), "reslab")
    assert seen > 150
    train = page.split("{#reslab-train}")[1].split("{#reslab-eval}")[0]
    assert "| `--milestones` | `EPOCH [EPOCH ...]` | the recipe's [`milestones`](config.md#milestones) |" in train
    assert "| `--progress` | `{auto,bar,plain,none}` | `auto` |" in train
    assert "(default 50% and 75% of the run)" in train  # argparse's %% as --help prints it


def test_the_config_page_has_every_key(sources):
    page = gen_docs.render("config.md", sources)
    rows = re.findall(r'^\| <span id="(\w+)"></span>`\w+` \| (.*?) \| (.*?) \| (.*?) \| (.*?) \|$', page, re.M)
    assert [r[0] for r in rows] == list(sources.config_class.__dataclass_fields__)
    by_key = {key: (kind, default, flag, meaning) for key, kind, default, flag, meaning in rows}
    assert by_key["lr"][:3] == ("`float`", "`0.2`", "`--lr`")
    assert (
        by_key["betas"][1] == "`[0.9, 0.999]`" and by_key["pretrained"][0] == "<code>bool &#124; str &#124; None</code>"
    )
    assert "None: on for SGD with momentum" in by_key["nesterov"][3]  # the field's comment in the source
    assert by_key["optimizer"][3] == "one of `sgd`, `adam`, `adamw`"  # the parser's choices
    assert all(meaning for _, _, _, meaning in by_key.values())


def test_a_stale_page_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gen_docs, "REFERENCE", tmp_path)
    monkeypatch.setattr(gen_docs, "ROOT", tmp_path.parent)
    for name in gen_docs.PAGES:
        (tmp_path / name).write_text(gen_docs.render(name))
    assert gen_docs.main(["--check"]) == 0
    (tmp_path / "models.md").write_text("# Models\n\nan old table\n")
    assert gen_docs.main(["--check"]) == 1
    assert f"stale (run `make docs-gen`): {tmp_path.name}/models.md" in capsys.readouterr().err
    assert gen_docs.main([]) == 0 and gen_docs.main(["--check"]) == 0  # rewritten
