"""Grad-CAM: the formula by hand on a tiny network, and the peak where the class evidence is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslab.errors import ConfigError
from reslab.visualize import gradcam


class Tiny(nn.Module):
    """conv(stride 2) -> ReLU -> global average pool -> linear: d y_c / d A^k = W[c, k] / (h w) everywhere."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(1, 3, 3, stride=2, padding=1)
        self.relu = nn.ReLU(inplace=True)  # in place, as VGG's: the captured activations must survive it
        self.fc = nn.Linear(3, 4)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean((2, 3)))


def test_gradcam_equals_the_formula_by_hand():
    net = Tiny().eval()
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for target in range(4):
        with torch.no_grad():
            acts = torch.relu(net.conv(x))  # (1, 3, 4, 4)
        alpha = net.fc.weight[target].detach() / 16  # the mean over 4x4 of d y_c / d A^k
        coarse = torch.relu((alpha.view(1, 3, 1, 1) * acts).sum(1, keepdim=True))
        expected = F.interpolate(coarse, size=(8, 8), mode="bilinear", align_corners=False)[0, 0]
        expected = (expected / expected.max()).numpy() if expected.max() > 0 else np.zeros((8, 8))
        got = gradcam(net, x, target=target, layer="relu")
        assert got.shape == (8, 8) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-6)
    # target None = the predicted class
    predicted = int(net(x).argmax())
    np.testing.assert_allclose(gradcam(net, x[0], layer="relu"), gradcam(net, x, target=predicted, layer="relu"))


class QuadrantNet(nn.Module):
    """Class 1's score is the amount of "bright blob" in the image (a blob detector, ReLU, average pool);
    class 0's is a constant: the only evidence for class 1 is where the blob is."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(2, 2)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0] = 1.0 / 27  # a blob detector
            self.conv.weight[1] = -1.0 / 27  # a dark detector, no evidence for class 1
            self.conv.bias.fill_(-0.2)
            self.fc.weight.copy_(torch.tensor([[0.0, 0.0], [50.0, -50.0]]))  # class 1: large logits
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).mean((2, 3)))


@pytest.mark.parametrize("quadrant", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_gradcam_peaks_in_the_quadrant_holding_the_evidence(quadrant):
    rng = np.random.default_rng(quadrant[0] * 2 + quadrant[1])
    x = torch.from_numpy(rng.random((1, 3, 32, 32)).astype(np.float32) * 0.1)
    qy, qx = quadrant
    x[:, :, qy * 16 + 5 : qy * 16 + 11, qx * 16 + 5 : qx * 16 + 11] = 1.0
    net = QuadrantNet().eval()
    cam = gradcam(net, x, target=1, layer="pool")
    assert cam.shape == (32, 32) and cam.min() >= 0 and cam.max() == pytest.approx(1.0)
    y, xx = np.unravel_index(cam.argmax(), cam.shape)
    assert (y // 16, xx // 16) == quadrant
    other = cam.copy()
    other[qy * 16 : qy * 16 + 16, qx * 16 : qx * 16 + 16] = 0
    assert other.max() < 0.5 * cam.max()  # the rest of the image holds (next to) no evidence


def test_gradcam_default_layer_is_the_last_stage_and_works_on_registry_models():
    from reslab import create_model

    net = create_model("resnet20", widths=[4, 8, 8]).eval()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(gradcam(net, x), gradcam(net, x, layer="layer3"))
    cam = gradcam(net, x, target=3, layer="layer2.0.conv1")
    assert cam.shape == (16, 16) and 0 <= cam.min() and cam.max() <= 1


def test_gradcam_errors():
    net = Tiny().eval()
    x = torch.randn(1, 1, 8, 8)
    with pytest.raises(ConfigError, match="no layer 'conv9'.*valid layer names: conv, relu, fc"):
        gradcam(net, x, layer="conv9")
    with pytest.raises(ConfigError, match="target must be a class index 0-3, got 7"):
        gradcam(net, x, target=7, layer="relu")
    with pytest.raises(ConfigError, match="not a \\(N, C, H, W\\) feature map"):
        gradcam(net, x, layer="fc")
    with pytest.raises(ConfigError, match="one image"):
        gradcam(net, torch.randn(2, 1, 8, 8), layer="relu")
