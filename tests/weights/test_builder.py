"""``create_model(name, pretrained=...)``: how weights are found (True, tag, full name, path), and the
adaptations after a strict load (a new head, other input channels) as timm makes them."""

from __future__ import annotations

import logging

import pytest
import torch

import reslab
from reslab.errors import CheckpointError, ConfigError
from reslab.weights import adapt, classes, hub, registry
from reslab.weights.preprocessing import imagenet
from reslab.weights.registry import WeightsEntry

from .test_layouts import outputs, randomise


@pytest.fixture
def tv_file(tmp_path):
    src = randomise(reslab.create_model("resnet18"))
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(src.state_dict(), path)
    return src, path


@pytest.fixture
def registered(monkeypatch, tv_file):
    """A registry holding one entry for resnet18 (default) and one for googlenet, served from local files."""
    _, path = tv_file
    entries = {}
    for model, tag, args in (("resnet18", "tv_in1k", {}), ("googlenet", "tv_in1k", {"transform_input": True})):
        e = WeightsEntry(
            model=model,
            tag=tag,
            url=f"https://example.invalid/{model}-0123abcd.pth",
            hash="sha256:0123abcd",
            layout="torchvision",
            preprocessing=imagenet(),
            classes="imagenet",
            model_args=args,
            default=True,
        )
        entries[e.name] = e
    monkeypatch.setattr(registry, "_WEIGHTS", entries)
    # the shipped ImageNet list is the registry work's; a stand-in keeps these tests independent of it
    names = {"imagenet": [f"class{i}" for i in range(1000)], "cifar10": list(classes.CIFAR10)}
    monkeypatch.setattr(classes, "class_names", lambda name: list(names[name]))
    monkeypatch.setattr(registry, "_ensure_registered", lambda: None)
    files = {"resnet18.tv_in1k": path}
    fetched = []

    def fetch(entry, progress=True):
        fetched.append(entry.name)
        if entry.name not in files:
            g = randomise(reslab.create_model(entry.model, **entry.model_args))
            files[entry.name] = path.parent / f"{entry.model}.pth"
            torch.save(g.state_dict(), files[entry.name])
        return files[entry.name]

    monkeypatch.setattr(hub, "fetch", fetch)
    return fetched


@pytest.mark.parametrize("pretrained", [True, "tv_in1k", "resnet18.tv_in1k", "TV_IN1K"])
def test_true_tag_and_full_name_find_the_entry(registered, tv_file, pretrained):
    src, _ = tv_file
    model = reslab.create_model("resnet18", pretrained=pretrained)
    assert registered == ["resnet18.tv_in1k"]
    cfg = model.pretrained_cfg
    assert cfg["source"] == "resnet18.tv_in1k" and cfg["class_names"][:2] == ["class0", "class1"]
    assert cfg["preprocessing"]["input_size"] == [3, 224, 224]
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(outputs(model, x), outputs(src, x), rtol=0, atol=0)


def test_weights_of_another_model_or_unknown_tag_are_refused(registered):
    with pytest.raises(ConfigError, match="names weights of another model"):
        reslab.create_model("resnet18", pretrained="googlenet.tv_in1k")
    with pytest.raises(ConfigError, match="unknown weights 'resnet18.nope'; resnet18 has: tv_in1k"):
        reslab.create_model("resnet18", pretrained="nope")


def test_googlenet_entry_sets_transform_input(registered):
    model = reslab.create_model("googlenet", pretrained=True)
    assert model.transform_input is True and model.pretrained_cfg["model_args"] == {"transform_input": True}
    with pytest.raises(ConfigError, match="needs transform_input=True"):
        reslab.create_model("googlenet", pretrained=True, transform_input=False)


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="weights file .*nothing.pth not found"):
        reslab.create_model("resnet18", pretrained=tmp_path / "nothing.pth")
    with pytest.raises(CheckpointError, match="is a directory"):
        reslab.create_model("resnet18", pretrained=str(tmp_path) + "/")


def test_new_head_is_logged_and_backbone_kept(tv_file, caplog):
    src, path = tv_file
    with caplog.at_level(logging.INFO, logger="reslab.weights"):
        model = reslab.create_model("resnet18", pretrained=path, num_classes=5)
    assert "classifier 1000 -> 5 classes" in caplog.text
    assert model.fc.out_features == 5 and model.pretrained_cfg["head_replaced"]
    assert model.pretrained_cfg["class_names"] is None
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval().forward_features(x), src.forward_features(x), rtol=0, atol=0)


def test_in_chans_adaptation_as_timm(tv_file):
    src, path = tv_file
    w = src.conv1.weight.detach()
    grey = reslab.create_model("resnet18", pretrained=path, in_chans=1)
    torch.testing.assert_close(grey.conv1.weight.detach(), w.sum(dim=1, keepdim=True))
    # a grey image through the summed kernel equals the RGB model on the grey image repeated 3 times
    g = torch.randn(1, 1, 32, 32)
    got, expected = outputs(grey, g), outputs(src, g.repeat(1, 3, 1, 1))
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()
    four = reslab.create_model("resnet18", pretrained=path, in_chans=4)
    expected = torch.cat([w, w[:, :1]], dim=1) * (3 / 4)  # timm: repeat the RGB kernels, scale by 3 / C
    torch.testing.assert_close(four.conv1.weight.detach(), expected)
    assert four.in_chans == 4 and four.pretrained_cfg["input_adapted"]
    assert four.pretrained_cfg["in_chans"] == 3
    assert adapt.adapt_input_conv(w, 3) is w


def test_entry_whose_class_list_does_not_fit_the_classifier_is_refused(registered, monkeypatch):
    e = registry._WEIGHTS["resnet18.tv_in1k"]
    monkeypatch.setitem(registry._WEIGHTS, e.name, WeightsEntry(**{**e.__dict__, "classes": "cifar10"}))
    with pytest.raises(CheckpointError, match="class list 'cifar10' has 10 class names .* 1000 outputs"):
        reslab.create_model("resnet18", pretrained=True)
