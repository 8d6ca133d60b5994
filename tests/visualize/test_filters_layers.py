"""First-layer filters (shape, range, per-filter scaling), the grid, and layer names."""

from __future__ import annotations

import numpy as np
import pytest

from reslab import create_model
from reslab.errors import ConfigError
from reslab.visualize import filters, grid, resolve_layer
from reslab.visualize.layers import default_layer


@pytest.mark.parametrize(
    "name, kwargs, shape",
    [
        ("lenet5", {}, (6, 5, 5, 1)),
        ("resnet20", {}, (16, 3, 3, 3)),
        ("resnet18", {}, (64, 7, 7, 3)),
        ("vgg11", {"num_classes": 10}, (64, 3, 3, 3)),
    ],
)
def test_filters_shape_and_range(name, kwargs, shape):
    net = create_model(name, **kwargs)
    f = filters(net)
    assert f.shape == shape and f.dtype == np.float32
    # each filter scaled on its own: its smallest weight 0, its largest 1
    assert np.allclose(f.reshape(len(f), -1).min(1), 0) and np.allclose(f.reshape(len(f), -1).max(1), 1)


def test_filters_are_the_weights_scaled():
    net = create_model("resnet20")
    w = net.conv1.weight.detach().numpy()[5].transpose(1, 2, 0)  # (kh, kw, RGB)
    expected = (w - w.min()) / (w.max() - w.min())
    np.testing.assert_allclose(filters(net)[5], expected, rtol=1e-5, atol=1e-6)
    deeper = filters(net, "layer1.0.conv1")  # 16 input channels: their mean, grey
    assert deeper.shape == (16, 3, 3, 1)
    with pytest.raises(ConfigError, match="'layer1' is a Sequential, not a convolution"):
        filters(net, "layer1")


def test_grid_tiles_with_padding():
    tiles = np.stack([np.full((2, 2, 3), i / 4, np.float32) for i in range(5)])
    g = grid(tiles, pad=1)
    assert g.shape == (2 * 3 + 1, 3 * 3 + 1, 3)  # 5 tiles -> 3 columns, 2 rows of 2+1 pixels, +1
    assert np.all(g[1:3, 1:3] == 0) and np.all(g[1:3, 4:6] == 0.25) and np.all(g[4:6, 1:3] == 0.75)
    assert np.all(g[0] == 1.0)


def test_layer_names_resolve_and_errors_list_them():
    net = create_model("resnet20", widths=[4, 8, 8])
    assert resolve_layer(net, "layer2.1.conv1") is net.layer2[1].conv1
    with pytest.raises(ConfigError, match=r"has no layer 'layer4' \(did you mean layer3, layer2, layer1\?\)"):
        resolve_layer(net, "layer4")
    big = create_model("resnet50")
    with pytest.raises(ConfigError) as e:
        resolve_layer(big, "layer5")
    message = str(e.value)
    assert "\n" not in message and "conv1, bn1, relu, maxpool, layer1" in message and "layer4" in message
    assert "more (print model.named_modules() for all)" in message and "layer3.4.bn2" not in message
    vgg = create_model("vgg11", num_classes=10)
    with pytest.raises(ConfigError) as e:
        resolve_layer(vgg, "features.99")
    assert "features.0" in str(e.value) and "features.18" in str(e.value)


def test_default_layer_is_the_last_stage():
    assert default_layer(create_model("resnet20")) == "layer3"
    assert default_layer(create_model("lenet5")) == "c5"
