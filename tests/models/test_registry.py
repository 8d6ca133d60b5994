"""The registry: listing, default configurations, published references, errors."""

from __future__ import annotations

import pytest
import torch

import reslab
from reslab.errors import ConfigError, UnknownModelError
from reslab.models.registry import FAMILIES


def test_list_models_pattern_and_family():
    assert reslab.list_models("resnet1*") == [
        "resnet18",
        "resnet101",
        "resnet152",
        "resnet101_keras",
        "resnet152_keras",
        "resnet101v2",
        "resnet152v2",
        "resnet110",
        "resnet1202",
    ]
    cifar = reslab.list_models(family="cifar")
    assert "resnet56" in cifar and "resnet50" not in cifar
    assert reslab.list_models("RESNET20") == ["resnet20"]
    with pytest.raises(ConfigError, match="family"):
        reslab.list_models(family="svhn")


def test_every_entry_carries_its_default_config_and_reference():
    for name in reslab.list_models():
        e = reslab.get_model_entry(name)
        assert e.family in FAMILIES
        assert len(e.input_size) == 3 and e.num_classes > 0
        assert e.paper
        if e.params is not None:
            assert e.params_source, f"{name}: a published count needs its source"


def test_default_num_classes_and_in_chans_come_from_the_entry():
    assert reslab.create_model("resnet20").num_classes == 10
    assert reslab.create_model("resnet18").num_classes == 1000
    model = reslab.create_model("resnet20", num_classes=100, in_chans=1)
    assert model.num_classes == 100 and model.conv1.in_channels == 1 and model.model_name == "resnet20"


def test_names_are_normalised_and_unknown_names_suggest():
    assert reslab.create_model("ResNet20").model_name == "resnet20"
    with pytest.raises(UnknownModelError, match="did you mean resnet20"):
        reslab.create_model("resnet-20")
    with pytest.raises(UnknownModelError, match="did you mean.*preact_resnet164"):
        reslab.create_model("preact_resnet146")
    with pytest.raises(UnknownModelError):
        reslab.create_model(None)


def test_unknown_override_lists_accepted_arguments():
    with pytest.raises(ConfigError, match="unknown argument 'unt'.*did you mean unit"):
        reslab.create_model("resnet20", unt="full_preact")


def test_reset_classifier_after_num_classes_0_keeps_device_and_dtype():
    """A model built without a classifier (num_classes=0) gets its new one where its weights are."""
    model = reslab.create_model("resnet20", num_classes=0).to(torch.float64)
    model.reset_classifier(5)
    assert model.get_classifier().weight.dtype == torch.float64
    assert model(torch.randn(2, 3, 32, 32, dtype=torch.float64)).shape == (2, 5)
    for name in ("resnet20", "vgg11", "densenet_bc100"):  # the three classifier layouts, on the meta device
        with torch.device("meta"):
            model = reslab.create_model(name, num_classes=0).to(torch.float64)
        model.reset_classifier(3)
        weight = model.get_classifier().weight
        assert (weight.device.type, weight.dtype, weight.shape[0]) == ("meta", torch.float64, 3), name
