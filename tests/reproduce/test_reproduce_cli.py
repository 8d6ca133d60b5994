"""`reslab reproduce` from the command line: --list, one-line errors for bad inputs, and a run on real data."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reslab.cli import main

from .conftest import CIFAR10_MINI, needs_mini


def error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not any("Traceback" in e for e in err), err
    return err[0]


def test_list_names_every_experiment_and_its_arms(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("degradation", "shortcuts", "preact-units", "identity-shortcuts", "depth", "densenet"):
        assert f"\n{name}: " in f"\n{out}"
    assert "  quick: plain20, plain56, resnet20, resnet56" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["degredation"],
            "reslab: error: unknown experiment 'degredation'; experiments: degradation, shortcuts, "
            "preact-units, identity-shortcuts, depth, densenet",
        ),
        (["degradation", "--budget", "huge"], "reslab: error: unknown budget 'huge'; budgets: quick, standard, paper"),
        (
            ["degradation", "--only", "resnet21"],
            "reslab: error: --only 'resnet21' is not an arm of this grid; arms: plain20, plain56, resnet20, resnet56",
        ),
        (["degradation", "--seeds", "0"], "reslab: error: --seeds must be a whole number >= 1, got 0"),
        ([], "reslab: error: give an EXPERIMENT (degradation, shortcuts"),
    ],
)
def test_bad_inputs_are_one_line_errors(capsys, tmp_path, args, expected):
    line = error_line(capsys, ["reproduce", *args, "--out", str(tmp_path / "r")])
    assert line.startswith(expected), line
    assert not (tmp_path / "r").exists()


def test_missing_data_dir(capsys, tmp_path):
    line = error_line(
        capsys, ["reproduce", "degradation", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]
    )
    assert (
        line == f"reslab: error: --data-dir {tmp_path / 'nowhere'} does not exist (expected CIFAR-10 python "
        "batches or a folder / .zip of class folders)"
    )


def test_bad_flag_value_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "degradation", "--epochs", "0"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--epochs" in err[0] and "expected a whole number >= 1" in err[0]


def test_subprocess_unknown_experiment(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "reslab", "reproduce", "resnet", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "reslab: error: unknown experiment 'resnet'; experiments: degradation, shortcuts, preact-units, "
        "identity-shortcuts, depth, densenet"
    ]


@needs_mini
@pytest.mark.slow
def test_cli_degradation_on_cifar10_mini_prints_report_and_verdicts(tmp_path, capsys):
    out = tmp_path / "deg"
    argv = [
        "reproduce",
        "degradation",
        "--data-dir",
        str(CIFAR10_MINI),
        "--epochs",
        "1",
        "--limit",
        "200",
        "--seeds",
        "1",
        "--only",
        "plain20,resnet20",
        "--out",
        str(out),
        "--device",
        "cpu",
        "-q",
    ]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"report: {out / 'report.md'}"
    assert "- ResNet-20 beats plain-20 (test error): " in "\n".join(lines)
    assert (out / "degradation.png").is_file() and (out / "results.csv").is_file()
