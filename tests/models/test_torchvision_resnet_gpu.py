"""GPU check: torchvision's resnet18..152 state dicts load strictly into reslab's and give the same logits.

Runs only where CUDA and torchvision are importable (torchvision cannot load beside the CPU torch of
the development machines); skipped with the reason otherwise.
"""

from __future__ import annotations

import pytest
import torch

import reslab

from .gpu_helpers import torchvision_or_skip


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_torchvision_resnet_state_dict_loads_and_matches(name, exact_float32):
    tv = torchvision_or_skip()
    torch.manual_seed(0)
    reference = getattr(tv.models, name)(weights=None).cuda().eval()
    for m in reference.modules():  # non-trivial BN statistics and last-BN gammas
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    model = reslab.create_model(name).cuda().eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(4, 3, 224, 224, device="cuda")
    with torch.no_grad():
        expected, got = reference(x), model(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
