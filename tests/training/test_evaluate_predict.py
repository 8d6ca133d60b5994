"""The library's evaluate() and predict(): rebuilt from the checkpoint alone."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reslab.errors import CheckpointError, ConfigError
from reslab.training import evaluate, predict
from tests.tiny_runs import train_tiny

DATA = dict(data="synthetic", image_size=8, data_args={"num_classes": 4, "num_samples": 128}, batch_size=32)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("api") / "run", ema=True, **DATA)


def test_evaluate_from_checkpoint_alone(run, tmp_path):
    result = evaluate(run / "best.pt", out=tmp_path)
    assert result.n == 32 and result.split == "test" and result.data == "synthetic"
    assert result.metrics.confusion.sum() == 32 and len(result.per_class()) == 4
    assert set(result.files) == {"confusion_csv", "confusion_png", "per_class_csv"}
    ema = evaluate(run, split="test", ema=True, out=tmp_path)  # a run directory: its best.pt
    assert ema.n == 32 and 0 <= ema.top1 <= 1
    with pytest.raises(ConfigError, match="no val split"):  # no validation split held out: val is its test split
        evaluate(run, split="val", out=tmp_path)
    train_split = evaluate(run / "last.pt", split="train", out=tmp_path)
    assert train_split.n == 128
    with pytest.raises(ConfigError, match="split"):
        evaluate(run / "last.pt", split="holdout")


def test_evaluate_ema_needs_ema_weights(tmp_path):
    out = train_tiny(tmp_path / "run", ema=False, **DATA)
    with pytest.raises(CheckpointError, match="no EMA weights"):
        evaluate(out / "last.pt", ema=True, out=tmp_path)


def test_predict_paths_and_pil_images(run, tmp_path):
    img = Image.fromarray((np.random.default_rng(0).random((8, 8, 3)) * 255).astype("uint8"))
    path = tmp_path / "x.png"
    img.save(path)
    results = predict(run / "best.pt", [path, img], topk=2)
    assert len(results) == 2 and all(len(r) == 2 for r in results)
    # the same image, as a file and as a PIL image
    assert [c for c, _ in results[0]] == [c for c, _ in results[1]]
    assert [p for _, p in results[0]] == pytest.approx([p for _, p in results[1]])
    assert {name for name, _ in results[0]} <= {f"class_{i}" for i in range(4)}
    with pytest.raises(ConfigError, match="topk"):
        predict(run / "best.pt", [path], topk=0)


# -- eval on a folder whose class names differ from the checkpoint's (issue 7 item 11) -------------------
@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A run on an image folder (classes cat, dog, emu) whose checkpoint lists them as emu, dog, cat."""
    with pytest.MonkeyPatch.context() as mp:  # small images use the array cache: not in the user's home
        mp.setenv("RESLAB_CACHE_DIR", str(tmp_path_factory.mktemp("array-cache")))
        yield _folder_run(tmp_path_factory)


def _folder_run(tmp_path_factory):
    from reslab.data import build_data

    from ..data.fakes import make_image_folder

    root = tmp_path_factory.mktemp("folder")
    make_image_folder(root / "d", "train", per_class=4)
    make_image_folder(root / "d", "val", per_class=3)
    bundle = build_data("folder", root / "d", image_size=8, batch_size=4, device="cpu")
    bundle.class_names = ["emu", "dog", "cat"]  # as a data set that orders its classes differently would
    out = train_tiny(root / "run", data="folder", data_dir=str(root / "d"), image_size=8, batch_size=4, bundle=bundle)
    return root, out


def test_eval_maps_a_permutation_of_the_class_names_by_name(folder_run, tmp_path, caplog):
    import torch

    from reslab.data import build_data
    from reslab.training.checkpoint import load_checkpoint, model_from_checkpoint

    root, run = folder_run
    result = evaluate(run / "best.pt", out=tmp_path)
    assert result.class_names == ["emu", "dog", "cat"]  # the checkpoint's order, which the scores follow
    assert "mapped by class name" in caplog.text
    # expected: the network's predictions against each image's class *name* in the checkpoint's order
    net = model_from_checkpoint(load_checkpoint(run / "best.pt")).eval()
    data = build_data("folder", root / "d", image_size=8, batch_size=64, augment=False)
    confusion = torch.zeros(3, 3, dtype=torch.int64)
    with torch.no_grad():
        for x, y in data.loader("test"):
            true = torch.tensor([["emu", "dog", "cat"].index(data.class_names[int(i)]) for i in y])
            for t, p in zip(true.tolist(), net(x).argmax(1).tolist()):
                confusion[t, p] += 1
    assert torch.equal(result.metrics.confusion.cpu(), confusion)
    assert [n for _, _, n in result.per_class()] == [3, 3, 3]


def test_eval_refuses_other_class_names_with_both_lists(folder_run, tmp_path, capsys):
    from reslab.cli import main

    from ..data.fakes import make_image_folder

    root, run = folder_run
    other = tmp_path / "other"
    make_image_folder(other, "train", per_class=2)
    make_image_folder(other, "val", per_class=1)
    (other / "train" / "emu").rename(other / "train" / "yak")
    (other / "val" / "emu").rename(other / "val" / "yak")
    argv = ["eval", "--checkpoint", str(run / "best.pt"), "--data-dir", str(other), "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("reslab: error: ")
    assert "[emu, dog, cat]" in err and "[cat, dog, yak]" in err
    assert not (tmp_path / "eval_test_per_class.csv").exists()


# -- predict with an unreadable file among good ones (issue 7 item 18) ----------------------------------
def test_predict_skips_unreadable_images_on_request(run, tmp_path):
    from reslab.errors import DataError

    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="bad.png"):
        predict(run / "best.pt", [good, bad])
    results = predict(run / "best.pt", [bad, good, tmp_path / "missing.jpg"], topk=2, on_error="skip")
    assert isinstance(results[0], DataError) and "bad.png" in str(results[0])
    assert results[1] == predict(run / "best.pt", [good], topk=2)[0]
    assert isinstance(results[2], DataError) and "missing.jpg" in str(results[2])
    with pytest.raises(ConfigError, match="on_error"):
        predict(run / "best.pt", [good], on_error="ignore")


def test_predict_cli_classifies_the_good_images_and_exits_1(run, tmp_path, capsys):
    from reslab.cli import main

    good = [tmp_path / "a.png", tmp_path / "b.png"]
    for i, path in enumerate(good):
        Image.fromarray(np.full((8, 8, 3), 60 * i, dtype=np.uint8)).save(path)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    argv = ["predict", "--checkpoint", str(run / "best.pt"), "--topk", "1", str(good[0]), str(bad), str(good[1])]
    assert main(argv) == 1
    captured = capsys.readouterr()
    out = captured.out.strip().splitlines()
    assert [line.split(":")[0] for line in out] == [str(good[0]), str(good[1])]
    err = captured.err.strip().splitlines()
    assert err[0].startswith("reslab: error: ") and "broken.jpg" in err[0] and "cannot read image" in err[0]
    assert "1 of 3 images" in err[-1] and len(err) == 2
    assert main(["predict", "--checkpoint", str(run / "best.pt"), str(bad)]) == 2  # nothing could be read
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["predict", "--json", "--checkpoint", str(run / "best.pt"), str(good[1])]) == 0
    assert '"image"' in capsys.readouterr().out


def test_the_top_k_figure_is_named_after_its_k(folder_run, tmp_path):
    """Three classes: top-3, named so (not "top5")."""
    _, run = folder_run
    result = evaluate(run / "best.pt", out=tmp_path)
    assert result.metrics.k == 3 and result.metrics.topk_name == "top3"
    assert set(result.as_dict()) == {"top1", "top3", "loss", "n"}
