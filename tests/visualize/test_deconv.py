"""The deconvnet (ZF Section 2.1) against an independent computation; guided backpropagation elsewhere;
the top-9 activating images (ZF Figure 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslab.errors import ConfigError
from reslab.visualize import DECONVNET, GUIDED, deconv, deconv_method, deconv_top
from reslab.visualize.deconv import unpool


class ConvNet(nn.Module):
    """conv-ReLU-maxpool twice, then a linear head: the network the deconvnet is defined for."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 5, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Linear(5 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def independent_deconvnet(net: ConvNet, x: torch.Tensor, channel: int, keep_max: bool) -> torch.Tensor:
    """ZF Section 2.1 written out: forward recording switches, zero all but the chosen activation(s), then
    max_unpool2d with the switches, ReLU, conv_transpose2d with the same weights and no bias."""
    c1, c2 = net.features[0], net.features[3]
    a1 = F.relu(F.conv2d(x, c1.weight, c1.bias, padding=1))
    p1, s1 = F.max_pool2d(a1, 2, return_indices=True)
    a2 = F.relu(F.conv2d(p1, c2.weight, c2.bias, padding=1))
    p2, s2 = F.max_pool2d(a2, 2, return_indices=True)
    top = torch.zeros_like(p2)
    if keep_max:
        i = int(p2[0, channel].argmax())
        top[0, channel].view(-1)[i] = p2[0, channel].reshape(-1)[i]
    else:
        top[0, channel] = p2[0, channel]
    y = F.max_unpool2d(top, s2, 2, output_size=a2.shape[-2:])
    y = F.conv_transpose2d(F.relu(y), c2.weight, None, padding=1)
    y = F.max_unpool2d(y, s1, 2, output_size=a1.shape[-2:])
    return F.conv_transpose2d(F.relu(y), c1.weight, None, padding=1)


@pytest.mark.parametrize("keep", ["max", "map"])
def test_deconvnet_equals_an_independent_computation(keep):
    net = ConvNet().eval()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    for channel in range(5):
        proj = deconv(net, x, "features.5", channel, keep=keep)
        assert proj.method == DECONVNET
        with torch.no_grad():
            expected = independent_deconvnet(net, x, channel, keep_max=keep == "max")[0].numpy()
        np.testing.assert_allclose(proj.reconstruction, expected, rtol=1e-5, atol=1e-6)
        assert proj.reconstruction.shape == (3, 16, 16)
    assert deconv_method(net, x, "features.5") == DECONVNET
    # the receptive field of one unit after conv3-pool2-conv3-pool2: 10 pixels, 4 apart
    proj = deconv(net, x, "features.5", 0)
    top, left, size = proj.receptive_field
    assert size == 10 and top == 4 * proj.position[0] - 3 and left == 4 * proj.position[1] - 3
    assert not np.abs(proj.reconstruction[:, : max(top, 0)]).any()  # nothing outside it
    assert not np.abs(proj.reconstruction[:, top + size :]).any()


def test_each_value_goes_back_to_its_argmax_position():
    pool_only = nn.Sequential(nn.MaxPool2d(2)).eval()
    x = torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(2))
    proj = deconv(pool_only, x, "0", 1, keep="map")
    rec = proj.reconstruction
    assert not rec[0].any()  # the other feature map is zeroed
    pooled = F.max_pool2d(x, 2)[0, 1]
    for i in range(3):
        for j in range(3):
            window = x[0, 1, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].numpy()
            back = rec[1, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            a, b = np.unravel_index(window.argmax(), window.shape)
            assert back[a, b] == pytest.approx(float(pooled[i, j]))  # the value, at its window's argmax
            assert np.count_nonzero(back) == 1


def test_unpool_is_max_unpool_without_overlap_and_the_transpose_with_it():
    x = torch.randn(2, 3, 9, 9, generator=torch.Generator().manual_seed(3))
    p, s = F.max_pool2d(x, 2, return_indices=True)
    y = torch.randn_like(p)
    torch.testing.assert_close(unpool(y, s, x.shape), F.max_unpool2d(y, s, 2, output_size=x.shape[-2:]))
    p, s = F.max_pool2d(x, 3, 2, return_indices=True)  # overlapping (AlexNet, ZF-Net): windows share maxima
    y = torch.randn_like(p)
    # the transpose of "take the switch's value": <unpool(y), x> = <y, pool(x)>
    torch.testing.assert_close((unpool(y, s, x.shape) * x).sum(), (y * p).sum())


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True)
        self.conv2, self.bn2 = nn.Conv2d(4, 5, 3, padding=1), nn.BatchNorm2d(5)
        for bn in (self.bn1, self.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.data.uniform_(0.5, 1.5)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))  # a functional ReLU too


def test_guided_backpropagation_where_the_deconvnet_is_not_defined():
    net = BNNet().eval()
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    assert deconv_method(net, x, "bn2") == GUIDED
    proj = deconv(net, x, "bn2", 2, keep="map")
    assert proj.method == GUIDED and proj.receptive_field is None
    # by hand: ReLUs pass back positive gradient where their input was positive; BN (eval) scales
    with torch.no_grad():
        a1 = net.bn1(net.conv1(x))
        out = net.bn2(net.conv2(torch.relu(a1)))
        g = torch.zeros_like(out)
        g[0, 2] = out[0, 2]
        scale2 = net.bn2.weight / torch.sqrt(net.bn2.running_var + net.bn2.eps)
        g = F.conv_transpose2d(g * scale2.view(1, -1, 1, 1), net.conv2.weight, None, padding=1)
        g = g.clamp(min=0) * (a1 > 0)
        scale1 = net.bn1.weight / torch.sqrt(net.bn1.running_var + net.bn1.eps)
        expected = F.conv_transpose2d(g * scale1.view(1, -1, 1, 1), net.conv1.weight, None, padding=1)
    np.testing.assert_allclose(proj.reconstruction, expected[0].numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="the deconvnet needs a conv / ReLU / max-pool chain"):
        deconv(net, x, "bn2", 0, method=DECONVNET)


def test_deconv_errors():
    net = ConvNet().eval()
    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(ConfigError, match=r"has 5 feature maps \(channels 0-4\), got channel 7"):
        deconv(net, x, "features.5", 7)
    with pytest.raises(ConfigError, match="not a \\(N, C, H, W\\) feature map"):
        deconv(net, x, "fc", 0)
    with pytest.raises(ConfigError, match="no layer 'features.9'"):
        deconv(net, x, "features.9", 0)


def test_deconv_top_finds_the_strongest_images_and_their_patches():
    net = ConvNet().eval()
    g = torch.Generator().manual_seed(6)
    batches = [(torch.randn(5, 3, 16, 16, generator=g), torch.zeros(5, dtype=torch.long)) for _ in range(3)]
    result = deconv_top(net, batches, "features.5", channels=[0, 3], top=4)
    assert result.method == DECONVNET and result.channels == [0, 3]
    with torch.no_grad():
        maxima = torch.cat([net.features(b[0])[:, [0, 3]].flatten(2).amax(2) for b in batches])  # (15, 2)
    for k in range(2):
        values, order = maxima[:, k].topk(4)
        assert result.indices[k] == order.tolist()
        np.testing.assert_allclose(result.values[k], values.numpy(), rtol=1e-6)
        for t in range(4):
            image = batches[order[t] // 5][0][order[t] % 5]
            np.testing.assert_allclose(result.images[k][t], image.permute(1, 2, 0).clamp(0, 1).numpy(), atol=1e-6)
            top, left, size = result.boxes[k][t]
            assert size == 10 and 0 <= top <= 6 and 0 <= left <= 6
            assert result.patches[k][t].shape == (10, 10, 3) == result.reconstruction_patches[k][t].shape
            assert result.reconstructions[k][t].shape == (16, 16, 3)
            assert 0 <= result.reconstructions[k][t].min() and result.reconstructions[k][t].max() <= 1
    with pytest.raises(ConfigError, match="top must be"):
        deconv_top(net, batches, "features.5", top=0)
