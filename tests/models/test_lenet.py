"""LeNet-5 (LeCun et al. 1998) and the Keras-tutorial variant: layout, counts, sizes, and that it learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import reslab
from reslab.errors import ConfigError, InputShapeError
from reslab.models.lenet import LeNet

from .zoo_helpers import (
    check_export,
    check_forward_backward,
    check_pickle,
    check_summary,
    check_too_small,
    check_unknown_override,
    n_params,
)

NAMES = ["lenet5", "lenet5_wide"]


def test_lenet5_parameter_count_layer_by_layer():
    # Section II.B with full C3 connections, parameter-free pooling and a linear output layer:
    # C1 6*(25+1), C3 16*(6*25+1), C5 120*(16*25+1), F6 84*(120+1), output 10*(84+1).
    model = reslab.create_model("lenet5")
    per_layer = {name: n_params(getattr(model, name)) for name in ("c1", "c3", "c5", "f6", "fc")}
    assert per_layer == {"c1": 156, "c3": 2_416, "c5": 48_120, "f6": 10_164, "fc": 850}
    assert n_params(model) == 61_706 == reslab.get_model_entry("lenet5").params
    assert n_params(model.s2) == n_params(model.s4) == 0


def test_lenet5_wide_parameter_count():
    # 32@5x5 (832) -> pool -> 64@5x5 (51,264) -> pool -> 4*4*64 -> dense 100 (102,500) -> dense 10 (1,010)
    model = reslab.create_model("lenet5_wide")
    assert n_params(model) == 155_606
    assert model.f6.in_features == 4 * 4 * 64


def test_lenet5_map_sizes_follow_figure_2():
    model = reslab.create_model("lenet5").eval()
    x = torch.randn(1, 1, 32, 32)
    sizes = []
    for name in ("c1", "s2", "c3", "s4", "c5"):
        x = getattr(model, name)(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]


def test_activation_and_pooling_are_selectable():
    paper = reslab.create_model("lenet5")
    assert isinstance(paper.act1, torch.nn.Tanh) and isinstance(paper.s2, torch.nn.AvgPool2d)
    modern = reslab.create_model("lenet5", activation="relu", pooling="max")
    assert isinstance(modern.act1, torch.nn.ReLU) and isinstance(modern.s2, torch.nn.MaxPool2d)
    assert n_params(modern) == n_params(paper)
    with pytest.raises(ConfigError, match="pooling"):
        reslab.create_model("lenet5", pooling="median")
    with pytest.raises(ConfigError, match="activation"):
        reslab.create_model("lenet5", activation="swish")


def test_mnist_28x28_by_padding_c1():
    model = reslab.create_model("lenet5", image_size=28)
    assert model.c1.padding == (2, 2)
    assert n_params(model) == 61_706  # padding adds no parameters
    x = torch.randn(2, 1, 28, 28)
    # padding the convolution by 2 is the same as padding the image to 32x32 with zeros
    ref = reslab.create_model("lenet5")
    ref.load_state_dict(model.state_dict())
    model.eval(), ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(F.pad(x, (2, 2, 2, 2))))
    with pytest.raises(InputShapeError, match="image_size=32"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ConfigError, match="image_size"):
        reslab.create_model("lenet5", image_size=29)  # odd margin
    with pytest.raises(ConfigError, match="image_size"):
        reslab.create_model("lenet5", image_size=36)  # larger than C5's field


@pytest.mark.parametrize("name,default,other", [("lenet5", 32, 28), ("lenet5_wide", 28, 32)])
def test_shapes_forward_backward_summary_pickle_export(name, default, other):
    model = reslab.create_model(name)
    assert model.in_chans == 1 and model.num_classes == 10
    check_forward_backward(model, default, batch=3)
    other_model = reslab.create_model(name, image_size=other, num_classes=7)
    check_forward_backward(other_model, other, batch=2, num_classes=7)
    check_summary(model)  # at the registered input size
    check_summary(other_model, (1, other, other))
    check_pickle(model, default)
    check_export(model, default)
    assert model.forward_head(model.forward_features(torch.randn(2, 1, default, default)), pre_logits=True).shape == (
        2,
        model.num_features,
    )


@pytest.mark.parametrize("name", NAMES)
def test_refuses_other_sizes_and_unknown_overrides(name):
    model = reslab.create_model(name)
    check_too_small(model)
    size = model.fixed_input_size
    with pytest.raises(InputShapeError, match=f"{size}x{size}"):
        model(torch.randn(1, 1, size + 4, size + 4))
    with pytest.raises(InputShapeError, match="in_chans=1"):
        model(torch.randn(1, 3, size, size))
    check_unknown_override(name)


def test_reset_classifier_and_no_classifier():
    model = reslab.create_model("lenet5", num_classes=0)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 84)
    model.reset_classifier(26)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 26)
    assert LeNet(in_chans=3).c1.in_channels == 3


def test_paper_init_is_uniform_within_fan_in_bound():
    model = reslab.create_model("lenet5")
    for layer in (model.c1, model.c3, model.c5, model.f6):
        bound = 2.4 / layer.weight[0].numel()
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.5 * bound  # drawn over the whole range, not zeros
        assert torch.count_nonzero(layer.bias) == 0


def test_lenet5_learns_digits():
    """LeNet-5 on scikit-learn's bundled 8x8 digits, upsampled to 32x32: >= 95% held-out accuracy."""
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    digits = datasets.load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=32, mode="bilinear", align_corners=False)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(digits.target)
    idx_train, idx_test = model_selection.train_test_split(
        torch.arange(len(y)).numpy(), test_size=0.25, random_state=0, stratify=y.numpy()
    )
    x_train, y_train, x_test, y_test = x[idx_train], y[idx_train], x[idx_test], y[idx_test]

    accuracy = _train_and_test(x_train, y_train, x_test, y_test)
    assert accuracy >= 0.95, f"test accuracy {accuracy:.3f}"


def _train_and_test(x_train, y_train, x_test, y_test) -> float:
    torch.manual_seed(0)
    model = reslab.create_model("lenet5")
    epochs, batch_size = 15, 32
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps = epochs * -(-len(x_train) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(perm), batch_size):
            batch = perm[i : i + batch_size]
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        return (model(x_test).argmax(1) == y_test).float().mean().item()
