"""``reslab report RUN_DIR``: the HTML page itself (no browser), its figures, and its refusals."""

from __future__ import annotations

import re

import pytest
import torch

from reslab.cli import main
from reslab.errors import CheckpointError, ConfigError, DataError
from reslab.visualize.report import REPORT_MARK, write_report

from .report_helpers import (
    CIFAR10_MINI,
    SECTIONS,
    decode_png,
    mistakes_in,
    read_page,
    train_digits,
    train_synthetic,
)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return train_digits(tmp_path_factory.mktemp("digits") / "run")


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    return train_synthetic(tmp_path_factory.mktemp("synthetic") / "run")


@pytest.fixture(scope="module")
def digits_report(digits_run, tmp_path_factory):
    """The CLI's report of the digits run, written into a copy-free --out (the run dir stays as trained)."""
    out = tmp_path_factory.mktemp("report") / "digits.html"
    assert main(["report", str(digits_run), "--out", str(out), "--device", "cpu"]) == 0
    return out


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("reslab: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


# -- the page --------------------------------------------------------------------------------------------
def test_report_is_one_self_contained_page_with_every_section(digits_report):
    text = digits_report.read_text(encoding="utf-8")
    page = read_page(digits_report)
    assert text.startswith(REPORT_MARK)
    for section in SECTIONS:
        assert section in page.ids
    # nothing fetched and nothing run: no script, no stylesheet link, no frame, no external source
    assert not {"script", "link", "iframe", "object", "embed"} & set(page.tags)
    assert page.links == []
    assert not re.search(r"(?i)(https?:|//)[^\s\"'<>]*\.(css|js|woff2?|ttf|png|jpe?g)", text)
    assert "url(" not in text
    # every picture an embedded, valid PNG: curves, confusion, 10 mistakes x (image, Grad-CAM), filters
    assert len(page.images) == 1 + 1 + 2 * 10 + 1
    for img in page.images:
        image = decode_png(img["src"])
        assert image.width > 0 and image.height > 0 and img.get("alt")


def test_report_figures_are_those_of_reslab_eval(digits_run, digits_report, tmp_path):
    from reslab.training import evaluate

    result = evaluate(digits_run / "best.pt", split="test", device="cpu", out=tmp_path)
    page = read_page(digits_report).plain
    assert f"{result.n} {result.top1:.4f} {result.top5:.4f} {result.loss:.4f}" in page
    for name, acc, n in result.per_class():
        assert f"{name} {acc:.4f} {n}" in page
    # the digits run held out no validation split: the report says its test figures chose best.pt
    assert "best.pt on the test split" in page and "optimistic" in page


def test_report_shows_the_most_confident_mistakes_with_their_probabilities(digits_run, digits_report):
    """An independent pass over the same split: the page's mistakes are exactly the 10 wrong predictions
    with the highest probability, in that order, with the right classes and probabilities."""
    from reslab.training.loading import load_model

    loaded = load_model(digits_run / "best.pt")
    net, bundle = loaded.net, loaded.data(device="cpu")
    probs, labels = [], []
    with torch.no_grad():
        for x, y in bundle.loader("test"):
            probs.append(torch.softmax(net(x), 1))
            labels.append(y)
    probs, labels = torch.cat(probs), torch.cat(labels)
    confidence, predicted = probs.max(1)
    wrong = [(-float(confidence[i]), i) for i in range(len(labels)) if predicted[i] != labels[i]]
    expected = [i for _, i in sorted(wrong)[:10]]
    shown = mistakes_in(read_page(digits_report))
    assert [s[0] for s in shown] == expected
    names = bundle.class_names
    for index, true, pred, p_pred, p_true in shown:
        assert (true, pred) == (names[labels[index]], names[predicted[index]]) and true != pred
        assert p_pred == pytest.approx(float(confidence[index]), abs=6e-4)
        assert p_true == pytest.approx(float(probs[index, labels[index]]), abs=6e-4)
    assert f"10 of the {len(wrong)} wrong predictions" in read_page(digits_report).plain


def test_report_of_a_run_with_a_validation_split_rgb(synthetic_run, capsys):
    """Default split: the validation split the run held out; --split test gives the test split."""
    assert main(["report", str(synthetic_run), "--mistakes", "3", "--device", "cpu"]) == 0
    out = synthetic_run / "report.html"
    assert capsys.readouterr().out.strip() == str(out)
    page = read_page(out)
    assert "best.pt on the val split" in page.plain and "optimistic" not in page.plain
    assert len(mistakes_in(page)) <= 3
    for img in page.images:
        assert decode_png(img["src"]).mode in ("RGB", "RGBA", "L")
    filters = decode_png(page.images[-1]["src"])
    assert filters.mode == "RGB"  # RGB first-layer filters shown in colour
    test_out = synthetic_run / "test.html"
    assert main(["report", str(synthetic_run), "--split", "test", "--out", str(test_out), "--mistakes", "0"]) == 0
    test_page = read_page(test_out)
    assert "best.pt on the test split" in test_page.plain and "--mistakes 0" in test_page.plain
    assert re.search(r"images top-1 top-4 loss 40 ", test_page.plain)  # the synthetic test split: 40 images
    assert re.search(r"images top-1 top-4 loss 40 ", page.plain)  # val: 25 % of the 160 training images


def test_report_python_api_returns_the_path(synthetic_run, tmp_path):
    path = write_report(synthetic_run, tmp_path / "sub" / "r.html", device="cpu", mistakes=2)
    assert path == tmp_path / "sub" / "r.html" and path.read_text(encoding="utf-8").startswith(REPORT_MARK)


def test_report_replaces_its_own_report_but_never_a_users_file(synthetic_run, tmp_path, capsys):
    out = tmp_path / "report.html"
    out.write_text("<html>my own notes</html>")
    _one_line_error(capsys, ["report", str(synthetic_run), "--out", str(out)], str(out), "not a reslab report")
    assert out.read_text() == "<html>my own notes</html>"
    out.unlink()
    assert main(["report", str(synthetic_run), "--out", str(out), "--mistakes", "1"]) == 0
    first = out.read_text(encoding="utf-8")
    assert main(["report", str(synthetic_run), "--out", str(out), "--mistakes", "2"]) == 0  # its own: replaced
    assert out.read_text(encoding="utf-8") != first and not list(tmp_path.glob(".report.html.tmp*"))


# -- refusals: one line, exit status 2, nothing of the user's touched -------------------------------------
def test_report_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    _one_line_error(capsys, ["report", str(tmp_path / "missing")], "not found")
    (tmp_path / "notes.txt").write_text("mine")
    _one_line_error(capsys, ["report", str(tmp_path)], str(tmp_path), "not a reslab run directory")
    _one_line_error(capsys, ["report", str(tmp_path / "notes.txt")], "is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_report_refuses_a_run_without_a_checkpoint(tmp_path, capsys):
    from reslab.training.run_dir import MARKER

    run = tmp_path / "run"
    run.mkdir()
    (run / MARKER).write_text("{}\n")
    _one_line_error(capsys, ["report", str(run)], "holds no checkpoint yet")
    with pytest.raises(CheckpointError):
        write_report(run)
    assert not (run / "report.html").exists()


def test_report_refuses_unreadable_files_in_one_line(synthetic_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    (run / "report.html").unlink(missing_ok=True)
    good_metrics = (run / "metrics.csv").read_bytes()
    (run / "metrics.csv").write_bytes(b"\xff\xfe\x00garbage")
    _one_line_error(capsys, ["report", str(run)], "metrics.csv", "not UTF-8")
    (run / "metrics.csv").write_bytes(good_metrics.replace(b",", b",x", 1)[:-1] + b"\n1,oops\n")
    with pytest.raises(DataError, match="metrics.csv"):
        write_report(run)
    (run / "metrics.csv").write_bytes(good_metrics)
    (run / "summary.json").write_text("{not json")
    _one_line_error(capsys, ["report", str(run)], "summary.json", "not valid JSON")
    (run / "summary.json").unlink()
    (run / "best.pt").write_bytes(b"PK\x03\x04 truncated")
    _one_line_error(capsys, ["report", str(run)], "best.pt", "corrupt or truncated")
    assert not (run / "report.html").exists()


def test_report_refuses_a_bad_out_or_split(digits_run, synthetic_run, tmp_path, capsys):
    _one_line_error(capsys, ["report", str(synthetic_run), "--out", str(tmp_path)], "is a directory")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(capsys, ["report", str(synthetic_run), "--out", str(blocker / "r.html")], "is a file")
    # the digits run held out no validation split: "val" would silently be its test split
    _one_line_error(
        capsys,
        ["report", str(digits_run), "--split", "val", "--out", str(tmp_path / "r.html")],
        "without a validation split",
        "--split test",
    )
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(digits_run), "--split", "holdout"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="split"):
        write_report(digits_run, tmp_path / "r.html", split="train")
    with pytest.raises(ConfigError, match="mistakes"):
        write_report(digits_run, tmp_path / "r.html", mistakes=-1)
    assert not (tmp_path / "r.html").exists()


# -- every kind of run directory -------------------------------------------------------------------------
def test_report_of_an_image_folder_run(tmp_path, capsys):
    """A run on the user's own class folders (RGB files, ROOT/train + ROOT/val): the report names the classes;
    a report.html of the user's own in the run directory is refused, not replaced."""
    from reslab.training import train

    from ..data.fakes import make_image_folder
    from .report_helpers import TINY

    make_image_folder(tmp_path / "d", "train", per_class=4)
    make_image_folder(tmp_path / "d", "val", per_class=3)
    run = tmp_path / "run"
    train(data="folder", data_dir=str(tmp_path / "d"), image_size=8, epochs=1, batch_size=4, out=str(run), **TINY)
    (run / "report.html").write_text("my notes")
    _one_line_error(capsys, ["report", str(run)], "not a reslab report")
    assert (run / "report.html").read_text() == "my notes"
    (run / "report.html").unlink()
    # ROOT/train + ROOT/val and no ROOT/test: "test" would silently be the validation split
    _one_line_error(capsys, ["report", str(run), "--split", "test"], "no test split", "--split val")
    assert not (run / "report.html").exists()
    assert main(["report", str(run), "--device", "cpu"]) == 0
    page = read_page(run / "report.html")
    names = sorted(p.name for p in (tmp_path / "d" / "train").iterdir())
    for name in names:
        assert f"{name} " in page.plain
    assert "best.pt on the val split" in page.plain
    assert re.search(r"images top-1 top-3 loss 9 ", page.plain)  # 3 classes x 3 validation images
    for img in page.images:
        decode_png(img["src"])


def test_report_of_a_run_with_only_last_pt_and_no_records(synthetic_run, tmp_path):
    """An interrupted run (no best.pt, no metrics.csv, config.yaml lost): the report uses last.pt, shows the
    configuration the checkpoint stores and says that no epoch has finished."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    for name in ("best.pt", "metrics.csv", "config.yaml", "summary.json", "report.html", "test.html"):
        (run / name).unlink(missing_ok=True)
    path = write_report(run, device="cpu", mistakes=2)
    page = read_page(path)
    assert "last.pt on the val split" in page.plain and "No epoch has finished yet" in page.plain
    assert "config.yaml is missing; this is the configuration stored in the checkpoint" in page.plain
    assert "model: resnet20" in page.plain and len(page.images) == 1 + 2 * len(mistakes_in(page)) + 1


NO_CIFAR = f"the CIFAR-10 subset is not at {CIFAR10_MINI} (a checkout without ../shared/data)"


@pytest.mark.slow
@pytest.mark.skipif(not (CIFAR10_MINI / "cifar-10-batches-py").is_dir(), reason=NO_CIFAR)
def test_report_of_a_real_cifar10_run(tmp_path):
    """Real CIFAR-10 images (cifar10-mini, its 1,020-image split): RGB 32x32 mistakes and 3x3 RGB filters."""
    from reslab.training import train

    from .report_helpers import TINY

    run = tmp_path / "run"
    train(data="cifar10", data_dir=str(CIFAR10_MINI), epochs=1, batch_size=128, out=str(run), **TINY)
    path = write_report(run, device="cpu")
    page = read_page(path)
    assert "best.pt on the test split" in page.plain and re.search(r"images top-1 top-5 loss 1020 ", page.plain)
    shown = mistakes_in(page)
    assert len(shown) == 10 and all(t != p for _, t, p, _, _ in shown)
    assert [s[3] for s in shown] == sorted((s[3] for s in shown), reverse=True)
    image = decode_png(page.images[2]["src"])
    assert image.mode == "RGB" and image.size == (96, 96)  # 32x32 shown at 3x


def test_report_grad_cam_is_that_of_the_network_in_eval_mode(synthetic_run, tmp_path):
    """Each overlay is Grad-CAM of the predicted class on the network as evaluated (eval mode: BatchNorm's
    running statistics), recomputed here independently; the network is not left in training mode."""
    import numpy as np

    from reslab.training.loading import load_model
    from reslab.visualize import gradcam
    from reslab.visualize.report import _enlarge, _rgb, cam_overlay

    path = write_report(synthetic_run, tmp_path / "r.html", device="cpu", mistakes=3)
    page = read_page(path)
    shown = mistakes_in(page)
    assert shown
    loaded = load_model(synthetic_run / "best.pt")
    net, bundle = loaded.net, loaded.data(device="cpu")
    images = torch.cat([x for x, _ in bundle.loader("val")])
    mean = torch.tensor(bundle.mean).view(-1, 1, 1)
    std = torch.tensor(bundle.std).view(-1, 1, 1)
    overlays = [img for img in page.images if img["alt"].startswith("Grad-CAM")]
    for (index, _, predicted, _, _), img in zip(shown, overlays):
        x = images[index]
        cam = gradcam(net, x, target=bundle.class_names.index(predicted))
        picture = _enlarge(_rgb((x * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()))
        expected = np.round(np.clip(cam_overlay(picture, cam), 0, 1) * 255)
        got = np.asarray(decode_png(img["src"]).convert("RGB"), dtype=np.float64)
        assert np.abs(got - expected).max() <= 1


def test_report_command_in_a_subprocess_gives_one_line_not_a_traceback(tmp_path):
    """As a user runs it: `python -m reslab report` on a folder that is not a run."""
    import subprocess
    import sys

    (tmp_path / "photos").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "reslab", "report", str(tmp_path / "photos")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"reslab: error: {tmp_path / 'photos'} is not a reslab run directory (no .reslab-run, best.pt or last.pt in it)"
    ]


def test_report_refuses_to_show_mistakes_that_disagree_with_the_evaluation(synthetic_run, tmp_path, monkeypatch):
    """The guard against a silent mismatch: mistakes counted apart from the confusion matrix stop the report."""
    from reslab.errors import TrainingError
    from reslab.visualize import report

    forward = report._MistakeRecorder.forward

    def miscounting(self, x):
        out = forward(self, x)
        self.wrong += 1  # as an off-by-one in the bookkeeping would
        return out

    monkeypatch.setattr(report._MistakeRecorder, "forward", miscounting)
    with pytest.raises(TrainingError, match="disagree with the evaluation"):
        write_report(synthetic_run, tmp_path / "r.html", device="cpu")
    assert not (tmp_path / "r.html").exists()
