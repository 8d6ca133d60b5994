"""Each weights layout: a file the test writes in that layout loads through ``create_model(name,
pretrained=PATH)`` and gives the outputs of the model it came from; files that fit nothing, or do not
fit the model, are refused in one line (never a partial load)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import reslab
from reslab.errors import CheckpointError, ConfigError
from reslab.weights.layouts import read_weights
from reslab.weights.layouts.safetensors import save_safetensors


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BN statistics everywhere (fresh BN is 1/0/0/1, which hides swaps)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * (0.3 if t.dim() > 1 else 0.2))
    return model.eval()


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


# ------------------------------------------------------------------------------------------------------
# akamaster/pytorch_resnet_cifar10, written out here independently of reslab's layers (its resnet.py)


class _AkaBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = stride != 1 or in_planes != planes
        self.planes = planes

    def shortcut(self, x):
        if not self.pad:
            return x
        p = self.planes // 4  # option A as akamaster writes it: zeros on both sides
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p), "constant", 0)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class AkaResNet(nn.Module):
    def __init__(self, n: int = 3, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes, layers = 16, []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(_AkaBlock(in_planes, planes, s))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3]).view(out.size(0), -1)
        return self.linear(out)


@pytest.fixture
def akamaster_file(tmp_path):
    ref = randomise(AkaResNet())
    path = tmp_path / "resnet20-12fca82f.th"
    # as akamaster's trainer saves it: a DataParallel model's state dict, nested, with the best accuracy
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}, "best_prec1": 91.73}, path)
    return ref, path


def test_akamaster_layout_equals_the_reference_only_with_split_padding(akamaster_file):
    ref, path = akamaster_file
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    expected = outputs(ref, x)

    model = reslab.create_model("resnet20", pretrained=path)
    assert model.pretrained_cfg["layout"] == "akamaster"
    assert model.model_args == {"shortcut_pad": "split"}
    assert model.pretrained_cfg["class_names"][0] == "airplane"
    assert model.pretrained_cfg["preprocessing"]["input_size"] == [3, 32, 32]
    torch.testing.assert_close(outputs(model, x), expected, rtol=0, atol=1e-5)

    # the silent failure: the same weights load strictly into the appending network ...
    appended = reslab.create_model("resnet20")
    sd = read_weights(path).state_dict
    appended.load_state_dict(sd)  # strict: every key and shape fits
    # ... and give other answers
    assert (outputs(appended, x) - expected).abs().max() > 0.1


def test_akamaster_weights_refuse_a_contradicting_shortcut_pad(akamaster_file):
    _, path = akamaster_file
    with pytest.raises(ConfigError, match="shortcut_pad='split'.*contradicts"):
        reslab.create_model("resnet20", pretrained=path, shortcut_pad="append")


def test_akamaster_weights_of_another_depth_are_refused_in_one_line(akamaster_file):
    _, path = akamaster_file
    with pytest.raises(CheckpointError) as e:
        reslab.create_model("resnet32", pretrained=path)
    assert "does not fit resnet32" in str(e.value) and "missing layer1.3" in str(e.value)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------------
# torchvision and timm


def test_torchvision_state_dict(tmp_path):
    src = randomise(reslab.create_model("resnet18", num_classes=7))
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(src.state_dict(), path)
    model = reslab.create_model("resnet18", pretrained=str(path))
    assert model.pretrained_cfg["layout"] == "torchvision" and model.num_classes == 7
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(outputs(model, x), outputs(src, x), rtol=0, atol=0)


def test_torchvision_old_densenet_keys(tmp_path):
    src = randomise(reslab.create_model("densenet121", num_classes=5))
    # torchvision < 0.3 named a dense layer's modules norm.1, relu.1, conv.1, norm.2, ...
    old = {}
    for k, v in src.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue  # such old checkpoints predate this buffer
        for part in ("norm1", "conv1", "norm2", "conv2"):
            k = k.replace(f".{part}.", f".{part[:-1]}.{part[-1]}.") if "denselayer" in k else k
        old[k] = v
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    path = tmp_path / "densenet121-old.pth"
    torch.save(old, path)
    model = reslab.create_model("densenet121", pretrained=path)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(outputs(model, x), outputs(src, x), rtol=0, atol=0)


@pytest.mark.parametrize("nesting", ["state_dict", "model", "state_dict_ema"])
def test_timm_checkpoint_nesting_and_prefixes(tmp_path, nesting):
    src = randomise(reslab.create_model("resnet18", num_classes=4))
    prefix = {"state_dict": "module.", "model": "_orig_mod.", "state_dict_ema": "module._orig_mod."}[nesting]
    ckpt = {"epoch": 3, "arch": "resnet18", nesting: {prefix + k: v for k, v in src.state_dict().items()}}
    if nesting == "state_dict_ema":  # both: the EMA weights are read, as timm's load_checkpoint does
        other = randomise(reslab.create_model("resnet18", num_classes=4), seed=5)
        ckpt["state_dict"] = other.state_dict()
    path = tmp_path / "checkpoint-3.pth.tar"
    torch.save(ckpt, path)
    model = reslab.create_model("resnet18", pretrained=path)
    assert model.pretrained_cfg["layout"] == "timm"
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(outputs(model, x), outputs(src, x), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------------
# safetensors


def test_safetensors_round_trip_keeps_what_rebuilds_the_model(tmp_path):
    src = randomise(reslab.create_model("resnet20", shortcut_pad="split"))
    src.model_args = {"shortcut_pad": "split"}
    prep = {
        "input_size": [3, 32, 32],
        "resize": 32,
        "crop": "center",
        "interpolation": "bilinear",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "mode": "reslab",
        "channel_order": "RGB",
    }
    path = save_safetensors(
        src, tmp_path / "w" / "resnet20.safetensors", class_names=list("abcdefghij"), preprocessing=prep
    )
    assert [p.name for p in path.parent.iterdir()] == ["resnet20.safetensors"]  # no temporary left behind
    model = reslab.create_model("resnet20", pretrained=path)
    cfg = model.pretrained_cfg
    assert cfg["layout"] == "safetensors" and cfg["model_args"] == {"shortcut_pad": "split"}
    assert cfg["class_names"] == list("abcdefghij") and cfg["preprocessing"] == prep
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(outputs(model, x), outputs(src, x), rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="holds resnet20 weights, not resnet32"):
        reslab.create_model("resnet32", pretrained=path)


def test_foreign_safetensors_is_a_plain_state_dict(tmp_path):
    from safetensors.torch import save_file

    src = randomise(reslab.create_model("resnet18", num_classes=3))
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path), metadata={"format": "pt"})
    model = reslab.create_model("resnet18", pretrained=path)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(outputs(model, x), outputs(src, x), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------------
# refusals


def test_a_state_dict_missing_one_bn_buffer_is_refused(tmp_path):
    sd = reslab.create_model("resnet20").state_dict()
    del sd["layer2.1.bn2.running_var"]
    path = tmp_path / "partial.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as e:
        reslab.create_model("resnet20", pretrained=path)
    msg = str(e.value)
    assert "missing layer2.1.bn2.running_var" in msg and "\n" not in msg


def test_shape_mismatch_names_both_shapes(tmp_path):
    sd = reslab.create_model("resnet20").state_dict()
    sd["layer1.0.conv1.weight"] = torch.zeros(16, 16, 5, 5)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"layer1.0.conv1.weight \(checkpoint \[16, 16, 5, 5\], model"):
        reslab.create_model("resnet20", pretrained=path)


@pytest.mark.parametrize(
    "content,match",
    [
        (b"just some text", "no weights layout.*not a PyTorch file"),
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "HDF5 file"),
    ],
)
def test_files_in_no_layout_are_refused(tmp_path, content, match):
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        reslab.create_model("resnet20", pretrained=path)


def test_a_pickle_of_something_else_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"epoch": 3, "acc": 0.5}, path)
    with pytest.raises(CheckpointError, match="no weights layout.*a dict with keys epoch, acc"):
        reslab.create_model("resnet20", pretrained=path)


def test_an_hdf5_file_that_is_not_keras_is_refused(tmp_path):
    import h5py

    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["images"] = [1, 2, 3]
    with pytest.raises(CheckpointError, match="not Keras weights.*images"):
        reslab.create_model("resnet50_keras", pretrained=path)
