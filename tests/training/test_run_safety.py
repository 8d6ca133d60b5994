"""Nothing of a user's is lost: --overwrite, non-empty --out, unique default run directories,
temporary files, a full disk, and unreadable checkpoints (issue 7 items 1-4, 6, 7, 16, 17)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reslab.cli import main
from reslab.errors import CheckpointError, ConfigError
from reslab.training import checkpoint as checkpoint_module
from reslab.training import train
from reslab.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint

from .conftest import TinyNet, fast_config, tiny_bundle

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (relative name -> bytes)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _cli_error(capsys, argv: list[str], match: str) -> str:
    """Run the CLI expecting a one-line ``reslab: error:`` with exit status 2 and no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("reslab: error: ") and match in err[-1], err
    assert not any("Traceback" in line for line in err)
    return err[-1]


def _tiny_run(tmp_path: Path, out: Path, **kw):
    cfg = fast_config(tmp_path, **{"epochs": 1, **kw})
    cfg["out"] = str(out)
    return train(cfg, bundle=tiny_bundle(), network=TinyNet(), progress="none")


# -- item 1: --overwrite keeps the old run until the new one has its first checkpoint -------------------------
def test_overwrite_with_bad_data_keeps_the_old_run_byte_identical(tmp_path, monkeypatch, capsys):
    """The issue's exact sequence: a digits run, then a folder run on /nonexistent with --overwrite."""
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            ["train", "--model", "resnet20", "--data", "digits", "--epochs", "1", "--out", "o/ow", "--progress", "none"]
        )
        == 0
    )
    before = _snapshot(tmp_path / "o" / "ow")
    assert "last.pt" in before and "best.pt" in before and "metrics.csv" in before
    capsys.readouterr()
    _cli_error(
        capsys,
        [
            "train",
            "--model",
            "resnet20",
            "--data",
            "folder",
            "--data-dir",
            "/nonexistent",
            "--epochs",
            "1",
            "--out",
            "o/ow",
            "--overwrite",
        ],
        "/nonexistent",
    )
    assert _snapshot(tmp_path / "o" / "ow") == before


def test_overwrite_failing_before_first_checkpoint_puts_the_old_run_back(tmp_path):
    """A new run that fails in its first epoch (non-finite loss) leaves the old run's files as they were."""
    out = tmp_path / "ow"
    _tiny_run(tmp_path, out)
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    from reslab.errors import TrainingError

    with pytest.raises(TrainingError, match="non-finite loss"):
        _tiny_run(tmp_path, out, overwrite=True, lr=1e30, schedule="constant", weight_decay=0.0)
    assert _snapshot(out) == before
    assert not list(out.glob(".replaced-*"))  # no aside folder left


def test_overwrite_replaces_once_the_new_checkpoint_exists(tmp_path, monkeypatch):
    """Until the new last.pt is on disk the old files sit in OUT/.replaced-*; afterwards they are gone."""
    out = tmp_path / "ow"
    _tiny_run(tmp_path, out, epochs=2)
    old_last = (out / "last.pt").read_bytes()
    seen = {}
    real_save = checkpoint_module.save_checkpoint

    def spy(state, path):
        if not seen:  # the new run's first checkpoint: the old files are aside, not deleted
            aside = [p for p in out.iterdir() if p.name.startswith(".replaced-")]
            seen["aside"] = aside
            seen["old_last"] = (aside[0] / "last.pt").read_bytes() if aside else None
        return real_save(state, path)

    monkeypatch.setattr("reslab.training.trainer.save_checkpoint", spy)
    result = _tiny_run(tmp_path, out, overwrite=True)
    assert len(seen["aside"]) == 1 and seen["old_last"] == old_last
    assert result.finished and load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not [p for p in out.iterdir() if p.name.startswith(".replaced-")]
    assert len((out / "metrics.csv").read_text().splitlines()) == 2  # the new run's single epoch


def test_overwrite_killed_before_first_checkpoint_leaves_old_files_recoverable(tmp_path):
    """kill -9 between moving the old files aside and the first checkpoint: they are in OUT/.replaced-*."""
    out = tmp_path / "ow"
    _tiny_run(tmp_path, out)
    before = _snapshot(out)
    script = (
        "import os, reslab.training.trainer as t\n"
        "t.save_checkpoint = lambda *a, **k: os._exit(9)\n"
        "from reslab.cli import main\n"
        f"main(['train', '--model', 'resnet20', '--model-arg', 'widths=[4,8,8]', '--data', 'synthetic', '--image-size',"
        f" '8', '--epochs', '1', '--device', 'cpu', '--threads', '1', '--out', {str(out)!r}, '--overwrite', '-q'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    aside = [p for p in out.iterdir() if p.name.startswith(".replaced-")]
    assert len(aside) == 1 and _snapshot(aside[0]) == before
    # the directory is still recognised as a run: a resume says where the old files are
    with pytest.raises(CheckpointError, match=r"\.replaced-"):
        train(resume=out)


# -- item 2: --overwrite only replaces a reslab run -------------------------------------------------------------
def test_overwrite_refuses_a_directory_that_is_not_a_reslab_run(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "tensorboard").mkdir(parents=True)
    for name in ("config.yaml", "metrics.csv", "train.log", "tensorboard/events.out.x"):
        (out / name).write_text(f"the user's {name}")
    before = _snapshot(out)
    line = _cli_error(
        capsys,
        ["train", "--model", "resnet20", "--data", "digits", "--epochs", "1", "--out", str(out), "--overwrite"],
        "is not a reslab run directory",
    )
    assert str(out) in line
    assert _snapshot(out) == before


def test_overwrite_moves_only_the_runs_own_files(tmp_path):
    out = tmp_path / "ow"
    _tiny_run(tmp_path, out)
    (out / "notes.txt").write_text("mine")
    (out / "plots").mkdir()
    (out / "plots" / "a.png").write_bytes(b"x")
    _tiny_run(tmp_path, out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / "plots" / "a.png").read_bytes() == b"x"


def test_runs_written_without_a_marker_file_still_count_as_runs(tmp_path):
    """Run directories of earlier reslab versions have no marker file: their last.pt identifies them."""
    out = tmp_path / "ow"
    _tiny_run(tmp_path, out)
    for marker in out.glob(".reslab*"):
        marker.unlink()
    result = _tiny_run(tmp_path, out, overwrite=True)
    assert result.finished


# -- item 3: without --overwrite, only an empty or missing --out is used --------------------------------------
@pytest.mark.parametrize("content", ["best.pt", "user"])
def test_a_non_empty_out_is_refused_without_overwrite(tmp_path, content, capsys):
    out = tmp_path / "out"
    if content == "best.pt":
        _tiny_run(tmp_path, out)
        (out / "last.pt").unlink()
    else:
        out.mkdir()
        (out / "data.txt").write_text("mine")
    before = _snapshot(out)
    _cli_error(
        capsys, ["train", "--model", "resnet20", "--data", "digits", "--epochs", "1", "--out", str(out)], "is not empty"
    )
    assert _snapshot(out) == before


def test_an_empty_or_missing_out_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    assert _tiny_run(tmp_path, tmp_path / "empty").finished
    assert _tiny_run(tmp_path, tmp_path / "a" / "b" / "new").finished


# -- item 4: default run directories are unique --------------------------------------------------------------
def test_default_run_directories_are_unique_within_one_second(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20240101-000000")
    dirs = []
    for _ in range(3):
        cfg = fast_config(tmp_path, epochs=1)
        del cfg["out"]
        dirs.append(train(cfg, bundle=tiny_bundle(), network=TinyNet(), progress="none").run_dir)
    assert [d.name for d in dirs] == [
        "tiny-synthetic-20240101-000000",
        "tiny-synthetic-20240101-000000-2",
        "tiny-synthetic-20240101-000000-3",
    ]
    for d in dirs:
        assert len((d / "metrics.csv").read_text().splitlines()) == 2 and load_checkpoint(d / "last.pt")["epoch"] == 1


@pytest.mark.slow
def test_two_cli_runs_started_in_the_same_second_get_their_own_directories(tmp_path):
    args = [
        "-m",
        "reslab",
        "train",
        "--model",
        "resnet20",
        "--model-arg",
        "widths=[4,8,8]",
        "--data",
        "synthetic",
        "--image-size",
        "8",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "-q",
    ]
    stamp = "import time; time.strftime = lambda fmt, *a: '20240101-000000'; import runpy, sys; "
    script = stamp + f"sys.argv = ['reslab', *{args[2:]!r}]; runpy.run_module('reslab', run_name='__main__')"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    runs = sorted((tmp_path / "runs").iterdir())
    assert [r.name for r in runs] == ["resnet20-synthetic-20240101-000000", "resnet20-synthetic-20240101-000000-2"]
    for r in runs:
        assert len((r / "metrics.csv").read_text().splitlines()) == 2
        assert (r / "train.log").read_text().count("training resnet20") == 1  # one run's log per directory


# -- item 6: temporary files are cleaned up --------------------------------------------------------------------
def test_temporary_files_are_removed_when_a_run_resumes(tmp_path):
    out = tmp_path / "run"
    steps = len(tiny_bundle().train)
    from .conftest import HookNet

    torch.manual_seed(0)
    train(
        fast_config(tmp_path, epochs=2),
        bundle=tiny_bundle(),
        network=HookNet(at_step=steps, action="SIGINT"),
        progress="none",
    )
    junk = [".last.pt.tmp-99999", ".best.pt.tmp", "metrics.csv.tmp", ".summary.json.tmp"]
    for name in junk:
        (out / name).write_bytes(b"\0" * 1000)
    (out / "keep.tmp").write_text("the user's")
    train(resume=out, bundle=tiny_bundle(), network=TinyNet(), progress="none")
    assert not [name for name in junk if (out / name).exists()]
    assert (out / "keep.tmp").exists()


def test_temporary_files_are_removed_when_a_run_is_overwritten(tmp_path):
    out = tmp_path / "run"
    _tiny_run(tmp_path, out)
    (out / ".last.pt.tmp-12345").write_bytes(b"\0" * 1000)
    _tiny_run(tmp_path, out, overwrite=True)
    assert not (out / ".last.pt.tmp-12345").exists()


# -- item 7: a full disk -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", ["torch", "oserror"])
def test_full_disk_while_saving_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {}, "model_name": "tiny", "config": {}, "num_classes": 2, "epoch": 1}, path)
    good = path.read_bytes()

    def full_disk(obj, f, *a, **k):
        f.write(b"partial")
        if failure == "torch":
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                "data/3: file write failed\nframe #0: c10::ThrowEnforceNotMet(...)\n" * 3
            )
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    free = type("Usage", (), {"free": 0})()
    monkeypatch.setattr(checkpoint_module.shutil, "disk_usage", lambda p: free)  # torch's error has no errno
    with pytest.raises(CheckpointError) as e:
        save_checkpoint({"epoch": 2}, path)
    message = str(e.value)
    assert "\n" not in message and str(path) in message and "no space left on device" in message
    assert "intact" in message
    assert path.read_bytes() == good and list(tmp_path.iterdir()) == [path]  # no temporary file left


@pytest.mark.slow
def test_full_disk_in_a_real_cli_run_prints_one_line(tmp_path):
    """The disk fills up after epoch 1: RLIMIT_FSIZE makes writes past 100 kB fail (EFBIG, as a full disk
    fails with ENOSPC; torch reports either as "[enforce fail at inline_container.cc...]"). The CLI prints
    one line, exits 2, and epoch 1's last.pt stays loadable."""
    out = tmp_path / "run"
    script = (
        "import resource, reslab.training.trainer as t\n"
        "real = t.save_checkpoint\n"
        "def save(state, path):\n"
        "    if state['epoch'] == 2:\n"
        "        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
        "    return real(state, path)\n"
        "t.save_checkpoint = save\n"
        "import sys\n"
        "from reslab.cli import main\n"
        "sys.exit(main(['train', '--model', 'resnet20', '--model-arg', 'widths=[4,8,8]', '--data', 'synthetic',"
        " '--image-size', '8', '--epochs', '3', '--device', 'cpu', '--threads', '1', '--out', "
        f"{str(out)!r}, '-q']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert err[0].startswith(f"reslab: error: could not write {out / 'last.pt'}: file too large")
    assert err[0].endswith(f"the previous {out / 'last.pt'} is intact (epoch 1)")
    assert (out / "last.pt").stat().st_size > 100_000  # the limit was below a checkpoint's size
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not list(out.glob(".*tmp*"))


# -- item 16 (part): --out that is a file or unwritable ----------------------------------------------------------
def test_out_that_is_a_file_is_refused_before_data_is_read(tmp_path, capsys, monkeypatch):
    import reslab.training.api as api

    monkeypatch.setattr(api, "_build_data", lambda *a, **k: pytest.fail("data was loaded"))
    target = tmp_path / "file.txt"
    target.write_text("mine")
    _cli_error(capsys, ["train", "--data", "digits", "--out", str(target)], f"--out {target} is a file")
    _cli_error(capsys, ["train", "--data", "digits", "--out", str(target / "run")], "is a file")
    assert target.read_text() == "mine"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write into read-only folders")
def test_unwritable_out_is_refused_before_data_is_read(tmp_path, capsys, monkeypatch):
    import reslab.training.api as api

    monkeypatch.setattr(api, "_build_data", lambda *a, **k: pytest.fail("data was loaded"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _cli_error(capsys, ["train", "--data", "digits", "--out", str(locked / "run")], "not writable")
    finally:
        locked.chmod(0o700)


def test_unwritable_out_is_refused_before_data_is_read_via_access(tmp_path, capsys, monkeypatch):
    """The same check where the tests run as root: os.access says the folder is not writable."""
    import reslab.training.api as api

    monkeypatch.setattr(api, "_build_data", lambda *a, **k: pytest.fail("data was loaded"))
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == locked else real_access(p, mode, **k))
    _cli_error(capsys, ["train", "--data", "digits", "--out", str(locked / "run")], f"{locked} is not writable")


# -- item 17: unreadable checkpoints, weights that do not fit, hints ----------------------------------------------
def test_random_bytes_are_not_a_reslab_checkpoint(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match=r"junk\.pt is not a reslab checkpoint") as e:
        load_checkpoint(junk)
    assert "Please file an issue" not in str(e.value) and "\n" not in str(e.value)
    _cli_error(capsys, ["eval", "--checkpoint", str(junk)], "junk.pt is not a reslab checkpoint")


def test_truncated_checkpoint_says_corrupt_or_truncated(tmp_path):
    out = tmp_path / "run"
    _tiny_run(tmp_path, out)
    data = (out / "last.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt is corrupt or truncated"):
        load_checkpoint(cut)


def test_weights_that_do_not_fit_name_the_first_differing_keys(tmp_path):
    out = tmp_path / "run"
    _tiny_run(tmp_path, out)
    ckpt = load_checkpoint(out / "last.pt")
    ckpt["model_name"], ckpt["model_args"] = "resnet20", {"widths": [4, 8, 8]}
    ckpt["in_chans"] = 3
    with pytest.raises(CheckpointError) as e:
        model_from_checkpoint(ckpt)
    message = str(e.value)
    assert "do not fit resnet20" in message and "\n" not in message
    assert "missing conv1.weight, bn1.weight, bn1.bias" in message
    assert "unexpected conv.weight, bn.weight, bn.bias" in message
    # a shape mismatch names the key and both shapes
    net = TinyNet(num_classes=4)
    ckpt2 = load_checkpoint(out / "last.pt")
    ckpt2["model"]["fc.weight"] = torch.zeros(4, 9)
    ckpt2["model_name"], ckpt2["model_args"] = "resnet20", {}
    from reslab.training.checkpoint import describe_mismatch

    text = describe_mismatch(net, ckpt2["model"])
    assert "fc.weight" in text and "[4, 9]" in text and "[4, 8]" in text


def test_non_finite_weights_message_does_not_name_a_missing_last_pt(tmp_path):
    from reslab.errors import TrainingError

    class Poisoned(TinyNet):
        """A buffer outside the loss turns NaN: the loss stays finite, the weights to save do not."""

        def __init__(self):
            super().__init__()
            self.register_buffer("poison", torch.zeros(1))

        def forward(self, x):
            if self.training:
                self.poison.fill_(float("nan"))
            return super().forward(x)

    with pytest.raises(TrainingError) as e:
        train(fast_config(tmp_path, epochs=1), bundle=tiny_bundle(), network=Poisoned(), progress="none")
    assert "non-finite weights" in str(e.value)
    assert "last.pt keeps" not in str(e.value) and "no checkpoint was written" in str(e.value)


def test_resume_hint_is_punctuated_and_quotes_paths_with_spaces(tmp_path, caplog):
    from .conftest import HookNet

    out = tmp_path / "my runs" / "a run"
    steps = len(tiny_bundle().train)
    torch.manual_seed(0)
    cfg = fast_config(tmp_path, epochs=2)
    cfg["out"] = str(out)
    with caplog.at_level("WARNING", logger="reslab"):
        result = train(cfg, bundle=tiny_bundle(), network=HookNet(at_step=steps + 2, action="SIGINT"), progress="none")
    assert result.interrupted == "SIGINT"
    message = [r.getMessage() for r in caplog.records if "Resume with" in r.getMessage()][-1]
    assert message.endswith(f"Resume with: reslab train --resume '{out}'.")
    with pytest.raises(ConfigError) as e:
        train(cfg, bundle=tiny_bundle(), network=TinyNet(), progress="none")
    assert f"reslab train --resume '{out}'" in str(e.value)


def test_train_log_on_a_full_disk_says_so_once(tmp_path, capsys):
    import logging

    from reslab.training.run_dir import RunLogHandler

    handler = RunLogHandler(tmp_path / "train.log")

    def full(text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    handler.stream.write = full
    log = logging.getLogger("reslab.test_full_disk_log")
    log.addHandler(handler)
    log.propagate = False
    try:
        for i in range(3):
            log.warning("line %d", i)
    finally:
        log.removeHandler(handler)
        handler.close()
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    assert err.count("\n") == 1 and "train.log: no space left on device" in err


def test_overwrite_replaces_the_previous_runs_report_but_keeps_a_users_report(tmp_path):
    # a report of the previous run would otherwise sit in the new run's directory, describing another run
    from reslab.visualize.report import REPORT_MARK

    out = tmp_path / "ow"
    _tiny_run(tmp_path, out)
    (out / "report.html").write_text(REPORT_MARK + "\n<html>old run</html>\n")
    _tiny_run(tmp_path, out, overwrite=True)
    assert not (out / "report.html").exists()

    users = tmp_path / "users"
    _tiny_run(tmp_path, users)
    (users / "report.html").write_text("<html>my own notes</html>\n")
    _tiny_run(tmp_path, users, overwrite=True)
    assert (users / "report.html").read_text() == "<html>my own notes</html>\n"


# -- a run directory in use is locked (training/run_lock.py) ---------------------------------------------------
_HOLD_LOCK = (
    "import sys\n"
    "from reslab.training.run_lock import RunLock\n"
    "lock = RunLock.acquire(sys.argv[1], 'hint')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
    "lock.release()\n"
)


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    """A second process holding ``run_dir``'s lock until its stdin closes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_locked_run_directory_is_refused_for_overwrite_resume_and_a_new_run(tmp_path):
    import socket

    from reslab.training.run_lock import LOCK, RunLock, lock_holder

    out = tmp_path / "run"
    _tiny_run(tmp_path, out)
    assert not (out / LOCK).exists()  # a finished run leaves no lock behind
    before = _snapshot(out)
    proc = _hold_lock(out)
    try:
        in_use = f"run directory {out} in use by PID {proc.pid} on {socket.gethostname()}"
        assert lock_holder(out) == f"PID {proc.pid} on {socket.gethostname()}"
        with pytest.raises(ConfigError, match=in_use) as e:
            _tiny_run(tmp_path, out, overwrite=True)
        assert "--overwrite" not in str(e.value)
        with pytest.raises(ConfigError, match=in_use) as e:
            _tiny_run(tmp_path, out)  # a fresh run into it: not told to pass --overwrite
        assert "--overwrite" not in str(e.value)
        with pytest.raises(ConfigError, match=in_use):
            train(resume=out)
        with pytest.raises(ConfigError, match=in_use):
            RunLock.acquire(out, "hint")  # the lock itself (a run that passed the early check meanwhile)
        assert {k: v for k, v in _snapshot(out).items() if k != LOCK} == before
    finally:
        proc.kill()  # a holder that dies: its lock is stale and the next run takes it over
        proc.wait()
    assert lock_holder(out) is None
    result = _tiny_run(tmp_path, out, overwrite=True)
    assert result.finished and not (out / LOCK).exists()


def test_overwrite_of_a_live_cli_run_is_one_line_and_the_run_goes_on(tmp_path, capsys):
    """A real `reslab train` in training: --overwrite and --resume of its directory are refused in one line
    naming its PID (no suggestion to --overwrite it); it goes on undisturbed and stops on SIGTERM with last.pt."""
    import signal

    out = tmp_path / "run"
    argv = ["--model", "resnet20", "--model-arg", "widths=[4,8,8]", "--data", "synthetic", "--image-size", "8"]
    argv += ["--device", "cpu", "--threads", "1", "--progress", "none", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reslab", "train", *argv, "--epochs", "500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.time() + 120
        while not (out / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        line = _cli_error(capsys, ["train", *argv, "--epochs", "500", "--overwrite"], f"in use by PID {proc.pid}")
        assert "--overwrite" not in line.split("in use by", 1)[1]
        _cli_error(capsys, ["train", "--resume", str(out)], f"run directory {out} in use by PID {proc.pid}")
        assert proc.poll() is None  # still training
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert not any("Traceback" in line for line in err.splitlines())
    assert "interrupted by SIGTERM" in err and load_checkpoint(out / "last.pt")["epoch"] >= 1
    assert not (out / ".reslab-lock").exists()  # the run ended: its lock is gone


# -- a run killed before its first checkpoint ----------------------------------------------------------------
_TINY_CLI = (
    "['train', '--model', 'resnet20', '--model-arg', 'widths=[4,8,8]', '--data', 'synthetic', '--image-size', '8',"
    " '--epochs', '1', '--device', 'cpu', '--threads', '1', '-q', '--out', {out!r}{extra}]"
)


def _killed_before_first_checkpoint(out: Path, *extra: str) -> None:
    """A `reslab train` killed (os._exit) where it would write its first checkpoint."""
    script = (
        "import os, reslab.training.trainer as t\n"
        "t.save_checkpoint = lambda *a, **k: os._exit(9)\n"
        "from reslab.cli import main\n"
        f"main({_TINY_CLI.format(out=str(out), extra=''.join(f', {e!r}' for e in extra))})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr


def test_resume_before_the_first_checkpoint_says_none_was_written_and_how_to_rerun(tmp_path, capsys):
    out = tmp_path / "run"
    _killed_before_first_checkpoint(out)
    assert (out / "config.yaml").is_file() and not (out / "last.pt").exists()
    with pytest.raises(CheckpointError, match="no checkpoint was written yet") as e:
        train(resume=out)
    assert "is it a reslab run directory" not in str(e.value)
    rerun = f"reslab train --config {out / 'config.yaml'} --out {out} --overwrite"
    line = _cli_error(capsys, ["train", "--resume", str(out)], "no checkpoint was written yet")
    assert rerun in line
    # the command it gives starts the run again
    assert main(rerun.split()[1:] + ["-q"]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    # a folder that is no run still gets the old question
    (tmp_path / "other").mkdir()
    with pytest.raises(CheckpointError, match="is it a reslab run directory"):
        train(resume=tmp_path / "other")


def test_a_second_overwrite_keeps_the_files_a_killed_overwrite_left_aside(tmp_path, caplog):
    """Run A; an --overwrite killed before its first checkpoint leaves A's files in .replaced-*; a second
    --overwrite that completes keeps them (and says so once) instead of deleting them."""
    out = tmp_path / "run"
    _tiny_run(tmp_path, out)
    before = _snapshot(out)
    _killed_before_first_checkpoint(out, "--overwrite")
    (aside,) = [p for p in out.iterdir() if p.name.startswith(".replaced-")]
    assert _snapshot(aside) == before
    with caplog.at_level("WARNING", logger="reslab"):
        result = _tiny_run(tmp_path, out, overwrite=True)
    assert result.finished and aside.is_dir() and _snapshot(aside) == before
    assert [p for p in out.iterdir() if p.name.startswith(".replaced-")] == [aside]
    kept = [r.getMessage() for r in caplog.records if str(aside) in r.getMessage()]
    assert len(kept) == 1 and "kept" in kept[0], kept


def test_resume_names_the_aside_folder_that_holds_the_replaced_runs_checkpoint(tmp_path):
    """Two interrupted --overwrites: the older folder holds the run's checkpoint, the newer only the killed run's
    config and log; --resume points to the one with the checkpoint."""
    out = tmp_path / "run"
    _tiny_run(tmp_path, out)
    _killed_before_first_checkpoint(out, "--overwrite")
    (first,) = [p for p in out.iterdir() if p.name.startswith(".replaced-")]
    newer = out / ".replaced-99999999-999999-1"  # what a second interrupted --overwrite leaves
    newer.mkdir()
    (newer / "config.yaml").write_text("epochs: 1\n")
    with pytest.raises(CheckpointError, match=f"files are in {first}"):
        train(resume=out)


def test_tensorboard_on_a_full_disk_is_one_line(tmp_path):
    """TensorBoard's event writer fails in its background thread (a full disk: ENOSPC from the file's write);
    the thread's traceback was printed and the training thread's flush raised a bare OSError."""
    pytest.importorskip("tensorboard", reason="tensorboard is optional and not installed")
    out = tmp_path / "run"
    script = (
        "import errno, sys\n"
        "import tensorboard.summary.writer.record_writer as rw\n"
        "real, calls = rw.RecordWriter.write, []\n"
        "def write(self, data):\n"
        "    calls.append(1)\n"
        "    if len(calls) > 2:\n"
        "        raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "    return real(self, data)\n"
        "rw.RecordWriter.write = write\n"
        "from reslab.cli import main\n"
        "sys.exit(main(['train', '--model', 'resnet20', '--model-arg', 'widths=[4,8,8]', '--data', 'synthetic',"
        " '--image-size', '8', '--epochs', '2', '--device', 'cpu', '--threads', '1', '--out', "
        f"{str(out)!r}, '-q']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception in thread" not in proc.stderr, proc.stderr
    err = proc.stderr.strip().splitlines()
    folder = out / "tensorboard"
    assert err == [
        f"reslab: error: could not write {folder}: no space left on device; the run's checkpoints are intact"
    ]
