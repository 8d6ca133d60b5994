"""Transfer learning through the command line: the tutorials' workflow end to end (the issue's proof),
published weights evaluated and used for prediction without training, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reslab import create_model
from reslab.cli import main
from reslab.training.checkpoint import load_checkpoint
from reslab.weights import hub, registry
from reslab.weights.classes import CIFAR10
from reslab.weights.preprocessing import Preprocessing

CIFAR10_MINI = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-mini"
needs_cifar = pytest.mark.skipif(
    not (CIFAR10_MINI / "cifar-10-batches-py").is_dir(), reason=f"real data {CIFAR10_MINI} is absent"
)


def _error(capsys, argv: list[str], match: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("reslab: error: ") and match in err[-1], err
    assert not any("Traceback" in e for e in err)
    return err[-1]


def _register(monkeypatch, model: str, tag: str, path: Path, preprocessing: Preprocessing, classes: str):
    """A registry entry for ``path`` (a torchvision-layout file the test wrote), served without a network."""
    entry = registry.WeightsEntry(
        model=model,
        tag=tag,
        url=f"https://example.invalid/{path.name}",
        hash="sha256:" + "0" * 64,
        layout="torchvision",
        preprocessing=preprocessing,
        classes=classes,
    )
    registry._ensure_registered()
    monkeypatch.setitem(registry._WEIGHTS, entry.name, entry)
    real_fetch = hub.fetch
    monkeypatch.setattr(hub, "fetch", lambda e, **kw: path if e.name == entry.name else real_fetch(e, **kw))
    return entry


def _image_folder(root: Path, classes=("cardinal", "jay"), n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, size=(72, 88, 3), dtype=np.uint8)
            pixels[..., c] = 255 - 40 * i  # a colour cue per class
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


# -- the proof ---------------------------------------------------------------------------------------
def test_tutorial_workflow_frozen_resnet50_new_head_and_recorded_preprocessing(tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "resnet50-test.pth"
    reference = create_model("resnet50")  # 1000 classes, as torchvision's file
    torch.save(reference.state_dict(), weights)  # torchvision's layout: a flat state dict
    original = reference.state_dict()
    # the weights' entry says what torchvision's do, with a distinctive interpolation and statistics
    prep = Preprocessing(interpolation="bicubic", mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    _register(monkeypatch, "resnet50", "test_in1k", weights, prep, "imagenet")  # replaced by the new head
    root = _image_folder(tmp_path / "birds")
    out = tmp_path / "run"
    # the tutorials' set-up: a frozen backbone, the head trained with Adam at 1e-4
    argv = [
        "train",
        "--model",
        "resnet50",
        "--pretrained",
        "test_in1k",
        "--data",
        "folder",
        "--data-dir",
        str(root),
        "--freeze",
        "backbone",
        "--lr",
        "1e-4",
        "--image-size",
        "64",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--val-split",
        "0.25",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--progress",
        "plain",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "fine-tuning defaults" in err and "optimizer=adam" in err  # Adam from the fine-tuning layer
    assert "classifier 1000 -> 2 classes" in err
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["config"]["optimizer"] == "adam" and ckpt["config"]["lr"] == 1e-4
    assert ckpt["model"]["fc.weight"].shape == (2, 2048)  # head 2048 -> n
    for key, value in original.items():
        if not key.startswith("fc."):
            assert torch.equal(ckpt["model"][key], value), key  # bit-identical, BN running statistics included
    fresh = create_model("resnet50", num_classes=2)  # the head the run started from is random: compare
    assert not torch.equal(ckpt["model"]["fc.weight"], fresh.fc.weight)  # with its recorded start instead
    optimizer_state = ckpt["optimizer"]["state"]
    assert optimizer_state and all(s["exp_avg"].shape in ((2, 2048), (2,)) for s in optimizer_state.values())
    info = ckpt["data_info"]  # the weights' preprocessing at the chosen size: their crop fraction kept
    assert info["mean"] == [0.5, 0.4, 0.3] and info["std"] == [0.2, 0.25, 0.3]
    assert (info["input_size"], info["resize"], info["interpolation"]) == ([3, 64, 64], 73, "bicubic")

    # predict uses the recorded preprocessing, not the defaults
    image = root / "jay" / "1.png"
    assert main(["predict", "--checkpoint", str(out), "--device", "cpu", "--json", str(image)]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    net = create_model("resnet50", num_classes=2)
    net.load_state_dict(load_checkpoint(out / "best.pt")["model"])
    net.eval()
    img = Image.open(image).convert("RGB")
    w, h = img.size
    img = img.resize((round(w * 73 / h), 73), Image.Resampling.BICUBIC)  # shorter side (height) to 73
    left, top = round((img.size[0] - 64) / 2), round((73 - 64) / 2)
    x = torch.from_numpy(np.array(img.crop((left, top, left + 64, top + 64)))).permute(2, 0, 1).float() / 255
    x = (x - torch.tensor([0.5, 0.4, 0.3]).view(3, 1, 1)) / torch.tensor([0.2, 0.25, 0.3]).view(3, 1, 1)
    with torch.no_grad():
        probs = torch.softmax(net(x[None]), 1)[0]
    assert {t["class"]: t["probability"] for t in got["top"]} == pytest.approx(
        {"cardinal": float(probs[0]), "jay": float(probs[1])}, abs=1e-5
    )


# -- published weights without training -------------------------------------------------------------
def _cifar_weights(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(1)
    model = create_model("resnet20")
    path = tmp_path / "resnet20-cifar.pth"
    torch.save(model.state_dict(), path)
    return path, model.eval()


def _mini_test_top1(model: torch.nn.Module, mean, std) -> float:
    from reslab.data.sources.cifar import load_cifar

    data = load_cifar("cifar10", CIFAR10_MINI)
    x = torch.from_numpy(data.test_images).float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + 500]).argmax(1) for i in range(0, len(x), 500)])
    return float((pred == torch.from_numpy(np.asarray(data.test_labels))).float().mean())


@pytest.mark.slow  # ResNet-20 over the 10,000 test images: about 11 s
@needs_cifar
def test_eval_published_cifar_weights_by_tag_uses_their_preprocessing(tmp_path, monkeypatch, capsys):
    path, model = _cifar_weights(tmp_path)
    prep = Preprocessing(input_size=(3, 32, 32), resize=32)  # akamaster's: 32 px, ImageNet mean / std
    _register(monkeypatch, "resnet20", "test_cifar10", path, prep, "cifar10")
    argv = [
        "eval",
        "--model",
        "resnet20",
        "--pretrained",
        "test_cifar10",
        "--data",
        "cifar10",
        "--data-dir",
        str(CIFAR10_MINI),
        "--split",
        "test",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert out[0] == "checkpoint: resnet20.test_cifar10"
    # the same figure as the network run by hand on the ImageNet-normalised images, not the data's own statistics
    assert result["top1"] == pytest.approx(_mini_test_top1(model, prep.mean, prep.std), abs=1e-9)
    assert not list(tmp_path.glob("eval_*"))  # nothing written unless --out is given


@pytest.mark.slow  # about 11 s
@needs_cifar
def test_eval_a_weights_file_as_path(tmp_path, capsys):
    path, model = _cifar_weights(tmp_path)
    argv = [
        "eval",
        "--model",
        "resnet20",
        "--pretrained",
        str(path),
        "--data",
        "cifar10",
        "--data-dir",
        str(CIFAR10_MINI),
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "ev"),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "records no preprocessing" in captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["top1"] == pytest.approx(_mini_test_top1(model, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    assert (tmp_path / "ev" / "eval_test_confusion.csv").is_file()


def test_predict_with_published_weights_prints_their_class_names(tmp_path, monkeypatch, capsys):
    path, model = _cifar_weights(tmp_path)
    _register(
        monkeypatch, "resnet20", "test_cifar10", path, Preprocessing(input_size=(3, 32, 32), resize=32), "cifar10"
    )
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(image)
    assert (
        main(
            [
                "predict",
                "--model",
                "resnet20",
                "--pretrained",
                "resnet20.test_cifar10",
                "--topk",
                "3",
                "--device",
                "cpu",
                str(image),
            ]
        )
        == 0
    )
    line = capsys.readouterr().out.strip()
    names = [part.rsplit(" ", 1)[0] for part in line.split(": ", 1)[1].split(", ")]
    assert len(names) == 3 and set(names) <= set(CIFAR10)


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["eval", "--data", "cifar10"], "give --checkpoint CKPT, or --model MODEL --pretrained WEIGHTS"),
        (["predict", "--pretrained", "tv_in1k", "x.jpg"], "--pretrained tv_in1k needs --model"),
        (
            ["predict", "--checkpoint", "a.pt", "--model", "resnet20", "--pretrained", "x", "y.jpg"],
            "give --checkpoint or --pretrained, not both",
        ),
        (["train", "--model", "resnet20", "--freeze", "stages:zero"], "freeze must be none, backbone or stages:N"),
        (["train", "--model", "resnet20", "--backbone-lr-scale", "0"], "use freeze: backbone (--freeze backbone)"),
        (
            ["train", "--model", "resnet20", "--pretrained", "no_such_tag", "--data", "synthetic"],
            "unknown weights 'resnet20.no_such_tag'",
        ),
        (
            ["train", "--model", "resnet20", "--pretrained", "resnet56.some_tag", "--data", "synthetic"],
            "names weights of another model",
        ),
        (["train", "--model", "resnet20", "--pretrained", "missing.pth", "--data", "synthetic"], "missing.pth"),
    ],
)
def test_transfer_errors_are_one_line(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    _error(capsys, argv, match)
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_predict_with_imagenet_weights_from_the_cache_prints_imagenet_names(tmp_path, monkeypatch, capsys):
    """`reslab predict --model resnet18 --pretrained tv_in1k photo.jpg`: the registry's real entry, its file
    found in reslab's cache (a file the test writes, so its hash is the test's), ImageNet's names printed."""
    import dataclasses
    import hashlib
    import os

    from reslab.weights.classes import class_names

    torch.manual_seed(0)
    net = create_model("resnet18")
    with torch.no_grad():
        net.fc.bias[207] = 1e4  # every image is a golden retriever
    cache = Path(os.environ["RESLAB_HOME"]) / "weights"
    cache.mkdir(parents=True)
    real = registry.get_weights("resnet18", "tv_in1k")
    path = cache / real.file_name
    torch.save(net.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(registry._WEIGHTS, real.name, dataclasses.replace(real, hash=f"sha256:{digest}"))
    image = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(image)
    assert main(["predict", "--model", "resnet18", "--pretrained", "tv_in1k", "--topk", "2", str(image)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.split(": ", 1)[1].startswith("golden retriever 1.0000"), out
    assert class_names("imagenet")[207] == "golden retriever"


def test_cifar_images_resize_to_the_weights_input_size_and_the_log_says_so(tmp_path, monkeypatch, capsys):
    """Tutorial 001 feeds CIFAR-10 resized to the pretrained network's input: so does reslab, said in the log's first
    lines; --image-size overrides it; eval of the run evaluates at the recorded size."""
    from tests.data.fakes import write_cifar10

    torch.manual_seed(0)
    weights = tmp_path / "resnet18-test.pth"
    torch.save(create_model("resnet18").state_dict(), weights)
    _register(
        monkeypatch, "resnet18", "test_in1k", weights, Preprocessing(input_size=(3, 64, 64), resize=73), "imagenet"
    )
    data = tmp_path / "cifar"
    write_cifar10(data)
    base = ["train", "--model", "resnet18", "--pretrained", "test_in1k", "--data", "cifar10", "--data-dir", str(data)]
    base += ["--freeze", "backbone", "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--progress", "plain"]
    assert main([*base, "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "images 32x32 -> 64x64: the input size of resnet18.test_in1k (--image-size overrides)" in err
    first_lines = (tmp_path / "run" / "train.log").read_text().splitlines()[:12]
    assert any("images 32x32 -> 64x64" in line for line in first_lines)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["data_info"]["input_size"] == [3, 64, 64]
    assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main([*base, "--image-size", "48", "--out", str(tmp_path / "run48")]) == 0
    assert "images 32x32 -> 48x48 (image_size given)" in capsys.readouterr().err  # the user's size wins
    assert load_checkpoint(tmp_path / "run48" / "last.pt")["data_info"]["input_size"] == [3, 48, 48]


def test_tutorial_001_recipe_running_lines_and_the_batch_the_network_sees(tmp_path, monkeypatch, capsys):
    """The shipped transfer_cifar10 recipe (tutorial 001's run), scaled down by flags: its deliberate differences
    in the log, the running loss/accuracy every N batches, the frozen backbone's features cached; show-data draws the
    batch as the weights see it (resized to their input size)."""
    from PIL import Image as PILImage

    from tests.data.fakes import write_cifar10

    torch.manual_seed(0)
    weights = tmp_path / "resnet18-test.pth"
    torch.save(create_model("resnet18").state_dict(), weights)
    _register(
        monkeypatch, "resnet18", "test_in1k", weights, Preprocessing(input_size=(3, 48, 48), resize=55), "imagenet"
    )
    data = tmp_path / "cifar"
    write_cifar10(data)
    argv = ["train", "--config", "transfer_cifar10", "--model", "resnet18", "--pretrained", "test_in1k", "--data-dir"]
    argv += [str(data), "--batch-size", "8", "--epochs", "2", "--log-every", "2", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--progress", "plain"]) == 0
    log = (tmp_path / "run" / "train.log").read_text()
    assert "recipe transfer_cifar10: deliberate difference: the frozen backbone's BatchNorm stays in eval mode" in log
    assert "recipe transfer_cifar10: deliberate difference: the images get the weights' ImageNet mean/std" in log
    assert "images 32x32 -> 48x48: the input size of resnet18.test_in1k" in log
    assert "frozen-backbone feature cache: the backbone ran once over" in log
    running = [line for line in log.splitlines() if "running train loss" in line]
    assert len(running) == 2 * 2 and "epoch 1 batch 2/4: running train loss" in running[0]  # 30 images, batch 8
    # without weights the notes about the weights' preprocessing and frozen statistics do not apply
    assert main([*argv[:6], "none", *argv[7:], "--freeze", "none", "--out", str(tmp_path / "scratch")]) == 0
    scratch = (tmp_path / "scratch" / "train.log").read_text()
    assert "recipe transfer_cifar10: tutorial 001's settings" in scratch and "deliberate difference" not in scratch
    cfg = load_checkpoint(tmp_path / "run" / "last.pt")["config"]
    assert (cfg["optimizer"], cfg["lr"], cfg["freeze"], cfg["augment"], cfg["log_every"]) == (
        "adam",
        1e-4,
        "backbone",
        False,
        2,
    )
    capsys.readouterr()
    grid = tmp_path / "grid.png"
    show = ["show-data", "--data", "cifar10", "--data-dir", str(data), "--model", "resnet18", "--pretrained"]
    assert main([*show, "test_in1k", "-n", "4", "--no-augment", "--out", str(grid)]) == 0
    assert "images 32x32 -> 48x48" in capsys.readouterr().err
    plain = tmp_path / "plain.png"
    assert main(["show-data", "--data", "cifar10", "--data-dir", str(data), "-n", "4", "--out", str(plain)]) == 0
    assert PILImage.open(grid).size[0] > PILImage.open(plain).size[0]  # the same grid of 48 px cells, not 32
    assert main([*show[:-3], "--pretrained", "test_in1k", "--out", str(grid), "--overwrite"]) == 2
    assert "--pretrained needs the model" in capsys.readouterr().err
