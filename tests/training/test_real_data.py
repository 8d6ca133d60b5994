"""Real learning on real data: the bundled digits and the CIFAR-10 subset in ../shared/data/cifar10-mini."""

from __future__ import annotations

import pytest

from reslab.training import train

from .conftest import CIFAR10_MINI


def test_digits_reach_095(tmp_path):
    """ResNet-20 (narrow) on the 8x8 digits: >= 0.95 test accuracy in a few seconds."""
    result = train(
        model="resnet20",
        model_args={"widths": [8, 16, 32]},
        data="digits",
        epochs=6,
        batch_size=64,
        lr=0.1,
        nesterov=True,
        schedule="onecycle",
        label_smoothing=0.1,
        device="cpu",
        out=str(tmp_path / "run"),
        progress="none",
    )
    assert result.final_split == "test" and result.final.n == 359
    assert result.final.top1 >= 0.95, result.history


@pytest.mark.slow
@pytest.mark.skipif(
    not (CIFAR10_MINI / "cifar-10-batches-py").is_dir(),
    reason=f"the CIFAR-10 subset is not at {CIFAR10_MINI} (a checkout without ../shared/data)",
)
def test_cifar10_mini_reaches_035(tmp_path):
    """ResNet-20 on 4,065 real CIFAR-10 images, 4 epochs of one-cycle SGD: >= 0.35 on the 1,020
    validation images (chance is 0.10; about 0.40 is typical)."""
    result = train(
        model="resnet20",
        data="cifar10",
        data_dir=str(CIFAR10_MINI),
        epochs=4,
        batch_size=128,
        lr=0.2,
        nesterov=True,
        schedule="onecycle",
        label_smoothing=0.1,
        device="cpu",
        out=str(tmp_path / "run"),
        progress="none",
    )
    assert result.final.n == 1020
    assert result.final.top1 >= 0.35, result.history


@pytest.mark.skipif(
    not (CIFAR10_MINI / "cifar-10-batches-py").is_dir(),
    reason=f"the CIFAR-10 subset is not at {CIFAR10_MINI} (a checkout without ../shared/data)",
)
def test_a_last_batch_of_one_real_image_trains(tmp_path, capsys):
    """`reslab train` on 129 real CIFAR-10 images at batch 128: the last batch of one image (resnet18's last
    stage is 1x1 at 32 px, where BatchNorm needs two) joins the batch before, and the log says so once."""
    from reslab.cli import main

    out = tmp_path / "run"
    argv = ["train", "--model", "resnet18", "--model-arg", "widths=[8,8,8,8]", "--data", "cifar10"]
    argv += ["--data-dir", str(CIFAR10_MINI), "--data-arg", "limit=129", "--image-size", "32"]
    argv += ["--batch-size", "128", "--epochs", "1", "--device", "cpu", "--out", str(out), "--progress", "none"]
    assert main(argv) == 0, capsys.readouterr().err
    log = (out / "train.log").read_text()
    assert log.count("the last training batch would hold 1 image (129 images, batch 128)") == 1
    assert (out / "summary.json").exists()


@pytest.mark.skipif(
    not (CIFAR10_MINI / "cifar-10-batches-py").is_dir(),
    reason=f"the CIFAR-10 subset is not at {CIFAR10_MINI} (a checkout without ../shared/data)",
)
def test_a_training_split_of_one_real_image_is_one_line(tmp_path, capsys):
    """One training image has no batch to join: refused in one line before training, not BatchNorm's traceback."""
    from reslab.cli import main

    argv = ["train", "--model", "resnet18", "--model-arg", "widths=[8,8,8,8]", "--data", "cifar10"]
    argv += ["--data-dir", str(CIFAR10_MINI), "--data-arg", "limit=1", "--image-size", "32", "--epochs", "1"]
    assert main([*argv, "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("reslab: error: the training split's batch of 1 image (1 training image)"), err
    assert not any("Traceback" in line for line in err) and not (tmp_path / "run").exists()
