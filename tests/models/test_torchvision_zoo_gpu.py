"""GPU check: torchvision's vgg16, densenet121, googlenet and alexnet state dicts (randomly initialised,
no download) load strictly into reslab's and give the same logits in eval mode.

Runs only where CUDA and torchvision are importable (torchvision cannot load beside the CPU torch of
the development machines); skipped with the reason otherwise.
"""

from __future__ import annotations

import pytest
import torch

import reslab

from .gpu_helpers import torchvision_or_skip

# name -> torchvision builder keyword arguments
CASES = {
    "vgg16": {},
    "densenet121": {},
    "googlenet": {"aux_logits": True, "init_weights": True},
    "alexnet": {},
}


@pytest.mark.parametrize("name", list(CASES))
def test_torchvision_state_dict_loads_and_gives_the_same_logits(name, exact_float32):
    tv = torchvision_or_skip()
    torch.manual_seed(0)
    reference = getattr(tv.models, name)(weights=None, **CASES[name]).cuda().eval()
    for m in reference.modules():  # non-trivial BN statistics, so a swapped mean / variance shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model = reslab.create_model(name).cuda().eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(4, 3, 224, 224, device="cuda")
    with torch.no_grad():
        expected, got = reference(x), model(x)
    assert expected.abs().max() > 1e-3  # a meaningful comparison
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
