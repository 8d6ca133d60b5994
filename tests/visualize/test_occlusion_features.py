"""Occlusion (ZF Figure 7), feature maps, and every registry family through the API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from reslab import create_model
from reslab.errors import ConfigError
from reslab.visualize import (
    DECONVNET,
    GUIDED,
    deconv,
    deconv_method,
    feature_maps,
    filters,
    gradcam,
    occlusion,
    occlusion_positions,
)

from .test_gradcam import QuadrantNet


def blob_image(qy: int, qx: int) -> torch.Tensor:
    x = torch.from_numpy(np.random.default_rng(0).random((1, 3, 32, 32)).astype(np.float32) * 0.1)
    x[:, :, qy * 16 + 5 : qy * 16 + 11, qx * 16 + 5 : qx * 16 + 11] = 1.0
    return x


@pytest.mark.parametrize("quadrant", [(0, 0), (1, 1), (0, 1)])
def test_covering_the_evidence_lowers_the_class_probability_most(quadrant):
    net = QuadrantNet().eval()
    x = blob_image(*quadrant)
    with torch.no_grad():
        whole = float(torch.softmax(net(x), 1)[0, 1])
    probs = occlusion(net, x, target=1, patch=8, stride=4, fill=0.0)
    positions = occlusion_positions(32, 8, 4)
    assert probs.shape == (len(positions), len(positions)) == (7, 7)
    i, j = np.unravel_index(probs.argmin(), probs.shape)
    # the lowest probability: the square over the blob (rows/columns 5-10 of its quadrant)
    y, x0 = positions[i], positions[j]
    qy, qx = quadrant
    assert y < qy * 16 + 11 and y + 8 > qy * 16 + 5 and x0 < qx * 16 + 11 and x0 + 8 > qx * 16 + 5
    assert probs.min() < whole - 0.05
    # far from the blob nothing changes
    far = (0 if qy else 6, 0 if qx else 6)
    assert probs[far] == pytest.approx(whole, abs=1e-6)
    # batched or not, the same
    np.testing.assert_allclose(occlusion(net, x, target=1, patch=8, stride=4, batch_size=3), probs, rtol=1e-6)


def test_occlusion_errors_and_defaults():
    net = QuadrantNet().eval()
    x = blob_image(0, 0)
    assert occlusion(net, x).shape == (13, 13)  # patch 8, stride 2 at 32x32; target: the predicted class
    with pytest.raises(ConfigError, match="patch 40 is larger than the 32x32 input"):
        occlusion(net, x, patch=40)
    with pytest.raises(ConfigError, match="stride must be a whole number >= 1"):
        occlusion(net, x, stride=0)
    with pytest.raises(ConfigError, match="fill needs 1 or 3 values"):
        occlusion(net, x, fill=[0.0, 0.0])
    with pytest.raises(ConfigError, match="target must be a class index 0-1, got 5"):
        occlusion(net, x, target=5)


def test_feature_maps_are_the_layer_output():
    net = QuadrantNet().eval()
    x = blob_image(1, 0)
    maps = feature_maps(net, x, "relu")
    with torch.no_grad():
        expected = torch.relu(net.conv(x))[0].numpy()
    np.testing.assert_allclose(maps, expected)
    with pytest.raises(ConfigError, match="not a \\(N, C, H, W\\) feature map"):
        feature_maps(net, x, "fc")


# one small network per registry family, at a small input: (name, overrides, input size, a layer)
FAMILIES = [
    ("resnet20", {"widths": [4, 8, 8]}, 16, "layer2", GUIDED),
    ("resnet18", {"widths": [4, 4, 8, 8]}, 32, "layer3", GUIDED),
    ("resnet50v2", {"widths": [4, 4, 8, 8]}, 32, "layer2", GUIDED),
    ("preact_resnet110", {"depth": 8, "widths": [4, 8, 8]}, 16, "layer3", GUIDED),
    ("plain20", {"widths": [4, 8, 8]}, 16, "layer3", GUIDED),
    ("alexnet", {}, 63, "features.7", DECONVNET),
    ("zfnet", {}, 224, "features.5", DECONVNET),  # overlapping ceil-mode pools and response normalisation
    ("densenet40", {"growth_rate": 2, "depth": 10}, 16, "features.denseblock2", GUIDED),
    ("googlenet", {}, 32, "inception3b", GUIDED),
    ("lenet5", {}, 32, "c3", GUIDED),  # tanh + average pooling: not a deconvnet network
    ("lenet5", {"activation": "relu", "pooling": "max"}, 32, "s4", DECONVNET),
    ("vgg11", {"hidden": 8, "pool_size": 1}, 32, "features.10", DECONVNET),
    ("vgg11_bn", {"hidden": 8, "pool_size": 1}, 32, "features.10", GUIDED),
]


@pytest.mark.parametrize("name, overrides, size, layer, method", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family(name, overrides, size, layer, method):
    torch.manual_seed(0)
    try:
        net = create_model(name, num_classes=5, **overrides).eval()
    except ConfigError as e:  # a family whose small form takes other arguments: say which
        pytest.fail(f"{name}: {e}")
    x = torch.randn(1, net.in_chans, size, size, generator=torch.Generator().manual_seed(0))
    f = filters(net)
    assert f.ndim == 4 and f.shape[-1] in (1, 3) and 0 <= f.min() and f.max() <= 1
    cam = gradcam(net, x)
    assert cam.shape == (size, size) and np.isfinite(cam).all()
    maps = feature_maps(net, x, layer)
    assert maps.ndim == 3
    assert deconv_method(net, x, layer) == method
    strongest = int(maps.reshape(len(maps), -1).max(1).argmax())  # a map with a positive activation
    proj = deconv(net, x, layer, strongest)
    assert proj.method == method and proj.reconstruction.shape == (net.in_chans, size, size)
    assert np.isfinite(proj.reconstruction).all() and np.abs(proj.reconstruction).sum() > 0


class Sigmoidal(nn.Module):  # no ReLU at all: guided backpropagation is then the plain gradient
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.act = nn.Sigmoid()

    def forward(self, x):
        return self.act(self.conv(x)).mean((2, 3))


def test_guided_backpropagation_without_relus_is_the_gradient():
    net = Sigmoidal().eval()
    x = torch.randn(1, 1, 6, 6).requires_grad_(True)
    out = net.act(net.conv(x))
    seed = torch.zeros_like(out)
    i = int(out[0, 1].detach().flatten().argmax())
    seed[0, 1].view(-1)[i] = out[0, 1].detach().flatten()[i]
    (grad,) = torch.autograd.grad(out, x, seed)
    np.testing.assert_allclose(deconv(net, x.detach(), "act", 1).reconstruction, grad[0].numpy(), rtol=1e-5)
