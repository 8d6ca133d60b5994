"""The weights registry: every published entry is consistent with the model it names, the class lists ship
with the package, lookups fail with one-line errors that suggest names."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from reslab.errors import ConfigError
from reslab.models.registry import check_overrides, get_model_entry
from reslab.weights import registry
from reslab.weights.classes import class_names
from reslab.weights.preprocessing import Preprocessing
from reslab.weights.registry import LAYOUTS, get_weights, list_weights, register_weights, weights_for

ENTRIES = [get_weights(n) for n in list_weights()]
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})\.[a-z0-9]+$")


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as it is, restored afterwards, so a test may register entries of its own."""
    monkeypatch.setattr(registry, "_WEIGHTS", dict(registry._WEIGHTS))


def test_imagenet_class_names_ship_with_the_package():
    names = class_names("imagenet")
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[1] == "goldfish" and names[207] == "golden retriever"
    assert names[999] == "toilet tissue"
    assert class_names("cifar10")[:2] == ["airplane", "automobile"] and len(class_names("cifar10")) == 10


def test_the_sources_the_issue_names_are_all_there():
    names = set(list_weights())
    for model in ("resnet18", "resnet34", "vgg11", "vgg11_bn", "vgg19_bn", "densenet161", "googlenet", "alexnet"):
        assert f"{model}.tv_in1k" in names
    assert {f"resnet{d}.tv2_in1k" for d in (50, 101, 152)} <= names
    keras = {
        "resnet50_keras",
        "resnet101_keras",
        "resnet152_keras",
        "resnet50v2",
        "resnet101v2",
        "resnet152v2",
        "vgg16",
        "vgg19",
        "densenet121",
        "densenet169",
        "densenet201",
    }
    assert {f"{m}.keras_in1k" for m in keras} <= names
    assert {f"resnet{d}.akamaster_cifar10" for d in (20, 32, 44, 56, 110, 1202)} <= names
    assert {f"resnet{d}.timm_a1_in1k" for d in (18, 34, 50, 101, 152)} <= names
    assert len(names) == 45


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_entry_fits_its_model(entry):
    model = get_model_entry(entry.model)  # registered
    assert model.name == entry.model
    check_overrides(entry.model, dict(entry.model_args))  # the network takes the arguments the weights need
    assert entry.layout in LAYOUTS
    assert entry.url.startswith("https://") and entry.file_name
    found = HASH_IN_NAME.search(entry.file_name)
    if found:  # torch.hub's convention: the file name carries the SHA-256 prefix
        assert entry.hash == f"sha256:{found.group(1)}", entry.file_name
    else:
        assert entry.hash_algorithm == "md5" and len(entry.hash_value) == 32
    prep = entry.preprocessing
    assert Preprocessing.from_dict(prep.to_dict()) == prep
    c, h, w = prep.input_size
    assert c == 3 and h == w == model.input_size[1]
    if prep.crop == "center":
        assert prep.resize >= h
    assert len(class_names(entry.classes)) in (10, 1000)
    assert all(0 < v <= 100 for v in entry.metrics.values()) and "top1" in entry.metrics
    assert entry.metrics_source and entry.license


def test_at_most_one_default_per_model_and_the_expected_ones():
    defaults: dict[str, list[str]] = {}
    for e in ENTRIES:
        if e.default:
            defaults.setdefault(e.model, []).append(e.tag)
    assert all(len(tags) == 1 for tags in defaults.values()), defaults
    assert get_weights("resnet50", True).tag == "tv2_in1k"  # torchvision's DEFAULT
    assert get_weights("resnet18", True).tag == "tv_in1k"
    assert get_weights("resnet20", True).tag == "akamaster_cifar10"
    assert get_weights("resnet50_keras", True).tag == "keras_in1k"
    assert get_weights("vgg16", True).tag == "tv_in1k"


def test_entries_carry_what_their_weights_need():
    assert get_weights("googlenet.tv_in1k").model_args == {"transform_input": True}
    assert get_weights("resnet56.akamaster_cifar10").model_args == {"shortcut_pad": "split"}
    assert get_weights("densenet169.keras_in1k").model_args == {"bn_eps": 1.001e-5}
    aka = get_weights("resnet20.akamaster_cifar10")
    assert (
        aka.url
        == "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/resnet20-12fca82f.th"
    )
    assert aka.classes == "cifar10" and aka.preprocessing.input_size == (3, 32, 32) and aka.metrics["top1"] == 91.73
    v2 = get_weights("resnet50.tv2_in1k")
    assert (v2.preprocessing.resize, v2.preprocessing.interpolation, v2.metrics["top1"]) == (232, "bilinear", 80.858)
    keras = get_weights("resnet50_keras.keras_in1k").preprocessing
    assert (keras.mode, keras.channel_order, keras.crop, keras.interpolation) == ("caffe", "BGR", "squash", "nearest")
    assert get_weights("resnet50v2.keras_in1k").preprocessing.mean == (0.5, 0.5, 0.5)
    timm = get_weights("resnet50.timm_a1_in1k")
    assert timm.preprocessing.resize == 235 and timm.preprocessing.interpolation == "bicubic"  # floor(224 / 0.95)


def test_listing_by_pattern_and_model():
    assert list_weights("resnet50") == [e.name for e in weights_for("resnet50")]
    assert list_weights("resnet50") == ["resnet50.tv_in1k", "resnet50.tv2_in1k", "resnet50.timm_a1_in1k"]
    assert list_weights("*.akamaster*")[0] == "resnet20.akamaster_cifar10"
    assert list_weights("nothing*") == []


@pytest.mark.parametrize(
    "args,message",
    [
        (("resnet50.tv3_in1k",), "unknown weights 'resnet50.tv3_in1k'; resnet50 has: tv_in1k, tv2_in1k"),
        (("resnt50.tv_in1k",), "did you mean resnet50.tv_in1k"),
        (("plain20", True), "no published weights for model 'plain20'"),
    ],
)
def test_unknown_weights_are_one_line_config_errors(args, message):
    with pytest.raises(ConfigError) as err:
        get_weights(*args)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_register_refuses_inconsistent_entries(scratch_registry):
    good = get_weights("resnet18.tv_in1k")
    with pytest.raises(ValueError, match="registered twice"):
        register_weights(good)
    with pytest.raises(ValueError, match="hash must be"):
        register_weights(replace(good, tag="x1", hash="sha1:abcdef12"))
    with pytest.raises(ValueError, match="layout must be"):
        register_weights(replace(good, tag="x2", layout="onnx"))
    with pytest.raises(ValueError, match="two default"):
        register_weights(replace(good, tag="x3", default=True))
    register_weights(replace(good, tag="x4", default=False))
    assert "resnet18.x4" in list_weights("resnet18")
