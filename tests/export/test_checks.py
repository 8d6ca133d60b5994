"""The comparison every export is checked with: 1e-4 absolute for logits up to 10, 1e-5 relative beyond."""

from __future__ import annotations

import pytest
import torch

from reslab.errors import ExportError
from reslab.export.checks import compare


def test_logits_up_to_10_need_1e_4():
    expected = torch.tensor([[0.5, -1.0, 9.9]])
    assert compare(expected, expected + 9e-5, "rt", "x").max_abs_diff == pytest.approx(9e-5, rel=0.05)  # fp32 at 9.9
    with pytest.raises(ExportError, match=r"x: rt differs from PyTorch by up to 0.0002 \(> 0.0001 allowed"):
        compare(expected, expected + 2e-4, "rt", "x")


def test_large_logits_scale_the_tolerance_and_say_so():
    expected = torch.tensor([[1000.0, -3.0]])
    result = compare(expected, expected + torch.tensor([[5e-3, 0.0]]), "rt", "x")
    assert result.scale == 1000.0 and result.tolerance == pytest.approx(1e-2)
    assert "logits up to 1e+03, tolerance 0.01" in result.describe()
    assert "tolerance" not in compare(expected / 200, expected / 200, "rt", "x").describe()
    with pytest.raises(ExportError, match="allowed for logits up to 1e"):
        compare(expected, expected + 2e-2, "rt", "x")


def test_wrong_shape_nan_and_a_diverged_network_are_errors():
    expected = torch.zeros(2, 3)
    with pytest.raises(ExportError, match=r"outputs of shape \(2, 4\), PyTorch \(2, 3\)"):
        compare(expected, torch.zeros(2, 4), "rt", "x")
    with pytest.raises(ExportError, match="rt gives non-finite outputs"):
        compare(expected, torch.full((2, 3), float("nan")), "rt", "x")
    with pytest.raises(ExportError, match="the network itself gives non-finite outputs"):
        compare(torch.full((2, 3), float("inf")), torch.zeros(2, 3), "rt", "x")
