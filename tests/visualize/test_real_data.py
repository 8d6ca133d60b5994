"""reslab visualize on real CIFAR-10 images (cifar10-mini): a VGG's deconvnet top-9 and a Grad-CAM."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from reslab.cli import main

from ..training.conftest import CIFAR10_MINI

pytestmark = pytest.mark.skipif(
    not (CIFAR10_MINI / "cifar-10-batches-py").is_dir(),
    reason=f"the CIFAR-10 subset is not at {CIFAR10_MINI} (a checkout without ../shared/data)",
)


@pytest.mark.slow
def test_vgg_deconvnet_and_gradcam_on_cifar10_mini(tmp_path, capsys):
    run = tmp_path / "vgg"
    code = main(
        [
            "train",
            "--model",
            "vgg11",
            "--model-arg",
            "hidden=16",
            "--model-arg",
            "pool_size=1",
            "--data",
            "cifar10",
            "--data-dir",
            str(CIFAR10_MINI),
            "--data-arg",
            "limit=128",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--device",
            "cpu",
            "--progress",
            "none",
            "--out",
            str(run),
            "-q",
        ]
    )
    assert code == 0
    capsys.readouterr()
    out = tmp_path / "top9.png"
    assert (
        main(
            [
                "visualize",
                "deconv",
                "--checkpoint",
                str(run),
                "--layer",
                "features.5",
                "--channels",
                "0,1",
                "--batch-size",
                "256",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert "deconvnet, layer features.5, maps 0,1" in said
    with Image.open(out) as img:
        assert img.format == "PNG"
    # a real validation image, as a user would have it: a PNG file
    with open(CIFAR10_MINI / "cifar-10-batches-py" / "test_batch", "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    image = tmp_path / "val0.png"
    Image.fromarray(np.asarray(batch["data"][0], dtype=np.uint8).reshape(3, 32, 32).transpose(1, 2, 0)).save(image)
    name = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"][
        batch["labels"][0]
    ]
    cam = tmp_path / "cam.png"
    assert (
        main(
            [
                "visualize",
                "gradcam",
                "--checkpoint",
                str(run),
                "--image",
                str(image),
                "--target",
                name,
                "--out",
                str(cam),
            ]
        )
        == 0
    )
    assert f"class {name} (p=" in capsys.readouterr().out
