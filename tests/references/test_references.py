"""The tutorial references and reslab's ``tutorial_*`` models against them: parameter counts measured from the
tutorials' code, output shapes, the logits flag, the facts WEIGHT_FILES.md states (paths, orders, layouts, TF
'same' padding, checked with h5py and torch alone where a loader has no Keras), and every kind of weight file the
tutorials' code writes loaded by reslab with the same logits (a file also proves Keras wrote what the model holds)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

keras = pytest.importorskip("keras", reason="keras is a dev dependency: pip install -e .[dev]")

from . import tools  # noqa: E402
from . import tutorial_keras as tk  # noqa: E402
from .tutorial_resnet50v2 import resnet50v2_002  # noqa: E402

#: (input channels, input size) of each Keras reference, as its tutorial builds it
INPUTS = {
    "resnet18_000": (3, 32),
    "lenet_004": (1, 28),
    "alexnet_004": (3, 227),
    "zfnet_004": (3, 224),
    "vgg16_004": (3, 224),
    "googlenet_004": (3, 224),
    "resnet50_004": (3, 227),
    "densenet121_004": (3, 224),
}
CLASSES = {name: 1000 for name in INPUTS} | {"resnet18_000": 100, "lenet_004": 10}
WITH_BATCHNORM = {"resnet18_000", "googlenet_004", "resnet50_004", "densenet121_004"}

# LeNet (tutorial 004), by hand from its code: 28x28x1 input;
#   Conv2D(32, 5x5, valid): 5*5*1*32 + 32   =     832   -> 24x24x32, MaxPooling2D(2) -> 12x12x32
#   Conv2D(64, 5x5, valid): 5*5*32*64 + 64  =  51,264   -> 8x8x64,   MaxPooling2D(2) -> 4x4x64, Flatten: 1024
#   Dense(100):             1024*100 + 100  = 102,500
#   Dense(10):              100*10 + 10     =   1,010
#   total                                     155,606
LENET_PARAMETERS = 5 * 5 * 1 * 32 + 32 + 5 * 5 * 32 * 64 + 64 + 4 * 4 * 64 * 100 + 100 + 100 * 10 + 10

#: trainable parameters measured from the tutorials' code (Keras: BatchNorm statistics are not trainable)
TRAINABLE = {
    "resnet18_000": 11_223_140,
    "lenet_004": LENET_PARAMETERS,
    "alexnet_004": 62_378_344,
    "zfnet_004": 62_357_608,
    "vgg16_004": 138_332_968,  # with the tutorial's (3, 2) kernel: 24,576 fewer than VGG-16's 138,357,544
    "googlenet_004": 7_738_728,
    "resnet50_004": 47_734_760,
    "densenet121_004": 14_045_224,
}


def batch(name: str, seed: int, n: int = 2) -> np.ndarray:
    channels, size = INPUTS[name]
    return np.random.default_rng(seed).normal(size=(n, channels, size, size)).astype("float32")


@pytest.fixture(scope="module")
def keras_model():
    """Each Keras reference built once for the module, randomised (seed 0; BatchNorm calibrated on a batch)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            model = tk.BUILDERS[name]()
            tools.randomise_keras(model, seed=0, calibrate=batch(name, 1) if name in WITH_BATCHNORM else None)
            cache[name] = model
        return cache[name]

    yield get
    cache.clear()


def trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# --------------------------------------------------------------------------------------------------------------------
# (a) parameter counts, (b) output shapes, the logits flag
# --------------------------------------------------------------------------------------------------------------------


def test_lenet_count_by_hand():
    assert LENET_PARAMETERS == 155_606


@pytest.mark.parametrize("name", list(INPUTS))
def test_trainable_parameters(keras_model, name):
    assert trainable(keras_model(name)) == TRAINABLE[name]


def test_resnet50v2_002_parameters_and_output():
    model = resnet50v2_002()
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 23_508_612
    with torch.no_grad():
        out = model.eval()(torch.randn(2, 3, 224, 224))
    assert out.shape == (2, 4)


def _tutorial_file(prefix: str) -> Path | None:
    here = Path(__file__).resolve()
    roots = [
        os.environ.get("RESLAB_TUTORIALS_DIR"),
        here.parents[2] / "shared/tutorials",
        here.parents[3] / "shared/tutorials",
    ]
    for root in roots:
        if root and Path(root).is_dir():
            found = sorted(Path(root).glob(f"{prefix}_*.txt"))
            if found:
                return found[0]
    return None


def test_resnet50v2_002_prints_as_the_tutorial():
    """The tutorial prints its model: the transcription prints the same (torch >= 2.x adds ``bias=True`` to
    BatchNorm2d's repr, which the tutorial's torch did not)."""
    path = _tutorial_file("002")
    if path is None:
        pytest.skip("tutorial 002 not found (set RESLAB_TUTORIALS_DIR)")
    text = path.read_text(encoding="utf-8").splitlines()
    start = text.index("ResNet50V2(")
    end = text.index(")", start)
    printed = "\n".join(text[start : end + 1])
    assert str(resnet50v2_002()).replace(", bias=True, track_running_stats", ", track_running_stats") == printed


def test_resnet50v2_002_state_dict_keys():
    keys = list(resnet50v2_002().state_dict())
    assert keys[:3] == ["conv1.conv.weight", "conv1.conv.bias", "conv2.conv.0.preact.0.weight"]
    assert "conv2.conv.0.short.weight" in keys and "conv2.conv.2.short.weight" not in keys  # max-pool shortcut
    assert keys[-2:] == ["post.fc.weight", "post.fc.bias"]
    assert len(keys) == 301


@pytest.mark.parametrize("name", list(INPUTS))
def test_output_shape(keras_model, name):
    model = keras_model(name)
    x = batch(name, 2)
    raw = model(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), training=False)
    # GoogLeNet's Dense layers act on the 4-D (N, 1, 1, 1024) pooled map: it returns (N, 1, 1, 1000)
    expected = (2, 1, 1, 1000) if name == "googlenet_004" else (2, CLASSES[name])
    assert tuple(raw.shape) == expected
    logits = tools.keras_logits(model, x)
    assert logits.shape == (2, CLASSES[name])
    # non-trivial logits (what randomise_keras is for): O(1), not ~0, and the two images differ
    assert np.isfinite(logits).all()
    assert 0.5 < np.abs(logits).max() < 1e3
    assert np.abs(logits[0] - logits[1]).max() > 0.1


@pytest.mark.parametrize("name", ["resnet18_000", "lenet_004", "alexnet_004", "googlenet_004", "densenet121_004"])
def test_logits_false_keeps_the_softmax(keras_model, name):
    model = keras_model(name)
    probs_model = tk.BUILDERS[name](logits=False)
    assert [tuple(w.shape) for w in probs_model.weights] == [tuple(w.shape) for w in model.weights]
    probs_model.set_weights(model.get_weights())
    x = batch(name, 3)
    logits = tools.keras_logits(model, x)
    probs = tools.keras_logits(probs_model, x)
    if name == "resnet18_000":  # the tutorial's fc has no softmax
        np.testing.assert_array_equal(probs, logits)
    else:
        expected = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
        np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)


def test_densenet_scale_layer():
    layer = tk.Scale(axis=3)
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 5)).astype("float32")
    layer.build(x.shape)
    assert [w.path.rsplit("/", 1)[-1] for w in layer.weights] == ["gamma", "beta"]
    assert [w.trainable for w in layer.weights] == [True, True]
    gamma, beta = np.arange(1, 6, dtype="float32"), np.arange(5, dtype="float32") - 2
    layer.set_weights([gamma, beta])
    np.testing.assert_allclose(np.asarray(layer(x).detach()), gamma * x + beta, rtol=1e-6)


# --------------------------------------------------------------------------------------------------------------------
# (c) reslab's tutorial_* models: the same parameter count, and the weights each kind of file holds give the same
#     logits (within 1e-4 of the largest) in reslab as in the Keras model that wrote them
# --------------------------------------------------------------------------------------------------------------------

KINDS = ["weights_h5", "legacy_full_h5", "legacy_weights_h5"]
#: reference -> reslab's registry name
RESLAB = {name: "tutorial_" + name.rsplit("_", 1)[0] for name in INPUTS}


def _save(model, kind: str, tmp_path: Path) -> Path:
    if kind == "weights_h5":
        return tools.save_keras_weights(model, tmp_path / "m.weights.h5")
    if kind == "legacy_full_h5":
        return tools.save_keras_legacy_h5(model, tmp_path / "m.h5")
    return tools.save_keras_legacy_weights_h5(model, tmp_path / "m_weights.h5")


@pytest.mark.parametrize("name", list(INPUTS))
def test_reslab_builds_the_tutorials_network_with_its_count(keras_model, name):
    import reslab

    entry = reslab.get_model_entry(RESLAB[name])
    with torch.device("meta"):  # shapes only
        net = reslab.create_model(RESLAB[name])
    assert sum(p.numel() for p in net.parameters()) == trainable(keras_model(name)) == entry.params
    assert entry.input_size == (INPUTS[name][0], INPUTS[name][1], INPUTS[name][1])
    assert entry.num_classes == CLASSES[name]


# every kind for the networks whose files differ in kind (GoogLeNet: depth-ordered groups; DenseNet: named layers
# and the BatchNorm epsilon in the full file's config; ResNet-18: nested, subclassed); .weights.h5 for the others
# (VGG-16's files are 0.55 GB each)
PARITY = [(name, "weights_h5") for name in INPUTS] + [
    (name, kind)
    for name in ("lenet_004", "googlenet_004", "densenet121_004", "resnet50_004")
    for kind in ("legacy_full_h5", "legacy_weights_h5")
]


@pytest.mark.parametrize("name, kind", PARITY)
def test_tutorial_weight_files_load_into_reslab_with_the_same_logits(keras_model, name, kind, tmp_path):
    import reslab

    model = keras_model(name)
    path = _save(model, kind, tmp_path)
    net = reslab.create_model(RESLAB[name], pretrained=path).eval()
    x = batch(name, 4)
    expected = tools.keras_logits(model, x)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    assert net.pretrained_cfg["layout"] == "keras_h5" and net.pretrained_cfg["preprocessing"] is None


def test_the_subclassed_resnet18_cannot_be_written_as_a_full_model_file(keras_model, tmp_path):
    with pytest.raises(NotImplementedError):  # a subclassed model with unserialisable arguments: no config
        _save(keras_model("resnet18_000"), "legacy_full_h5", tmp_path)


def test_resnet50v2_002_state_dict_loads_into_reslab_exactly(tmp_path):
    import reslab

    torch.manual_seed(0)
    tutorial = resnet50v2_002()
    for m in tutorial.modules():  # non-trivial statistics: a swapped BN would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    path = tmp_path / "resnet50v2.pth"
    torch.save(tutorial.state_dict(), path)  # what the tutorial's code saves
    net = reslab.create_model("tutorial_resnet50v2", pretrained=path).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net(x), tutorial.eval()(x), rtol=0, atol=1e-6)
    assert net.pretrained_cfg["layout"] == "tutorial002"


def test_a_file_that_does_not_fit_names_the_layer_and_the_shapes(keras_model, tmp_path):
    """Another network's file (AlexNet's into ZF-Net: as many layers, other shapes) and a file with a layer too
    many (LeNet with an extra Dense) are refused in one line."""
    import reslab
    from reslab.errors import CheckpointError

    alexnet = tools.save_keras_weights(keras_model("alexnet_004"), tmp_path / "alexnet.weights.h5")
    wrong = r"Keras layer conv2d(_\d+)? \(layers/conv2d: 11x11x3x96, 96\) does not fit tutorial_zfnet's features.0 "
    with pytest.raises(CheckpointError, match=wrong + r"\(7x7x3x96, 96\), the 1st convolution"):
        reslab.create_model("tutorial_zfnet", pretrained=alexnet)
    keras.backend.clear_session()
    bigger = tk.lenet_004()
    bigger.add(keras.layers.Dense(10))
    path = tools.save_keras_weights(bigger, tmp_path / "lenet-plus.weights.h5")
    extra = r"has 3 Keras dense layers, tutorial_lenet has 2 \(the first extra: dense_\d+ at layers/dense_2\)"
    with pytest.raises(CheckpointError, match=extra):
        reslab.create_model("tutorial_lenet", pretrained=path)


# --------------------------------------------------------------------------------------------------------------------
# WEIGHT_FILES.md's facts, read with h5py alone
# --------------------------------------------------------------------------------------------------------------------


def _datasets(path) -> dict[str, tuple]:
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: found.__setitem__(n, o.shape) if isinstance(o, h5py.Dataset) else None)
    return found


def _texts(values) -> list[str]:
    """An HDF5 string-list attribute (h5py gives bytes or str, depending on how it was written)."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _suffix(name: str) -> int:
    """``conv2d`` -> 0, ``conv2d_12`` -> 12 (Keras's auto names and container paths)."""
    head, _, tail = name.rpartition("_")
    return int(tail) if head and tail.isdigit() else 0


def test_weights_h5_sequential_paths(keras_model, tmp_path):
    path = tools.save_keras_weights(keras_model("lenet_004"), tmp_path / "lenet.weights.h5")
    assert _datasets(path) == {
        "layers/conv2d/vars/0": (5, 5, 1, 32),  # kernel HWIO
        "layers/conv2d/vars/1": (32,),
        "layers/conv2d_1/vars/0": (5, 5, 32, 64),
        "layers/conv2d_1/vars/1": (64,),
        "layers/dense/vars/0": (1024, 100),  # (in, out)
        "layers/dense/vars/1": (100,),
        "layers/dense_1/vars/0": (100, 10),
        "layers/dense_1/vars/1": (10,),
    }
    with h5py.File(path, "r") as f:
        # every layer has a vars group naming it, weights or not; the model's own at the root
        assert "name" in f["layers/max_pooling2d/vars"].attrs and "name" in f["vars"].attrs


def test_weights_h5_subclassed_paths(keras_model, tmp_path):
    model = keras_model("resnet18_000")
    path = tools.save_keras_weights(model, tmp_path / "resnet18.weights.h5")
    found = _datasets(path)
    # attributes are visited sorted by name and `layers` (Model.layers) comes between `layer4` and `stem`: the
    # stem Sequential is saved under layers/sequential, never under stem/
    assert found["layers/sequential/layers/conv2d/vars/0"] == (3, 3, 3, 64)
    assert not any(p.startswith("stem/") for p in found)
    assert found["layer1/layers/basic_block/c1/vars/0"] == (3, 3, 64, 64)
    assert found["layer1/layers/basic_block_1/b2/vars/3"] == (64,)  # BN: gamma, beta, moving_mean, moving_var
    assert found["layer2/layers/basic_block/downsample/layers/conv2d/vars/0"] == (1, 1, 64, 128)
    assert found["fc/vars/0"] == (512, 100)
    bn = model.layer1.layers[1].b2
    with h5py.File(path, "r") as f:
        for i, v in enumerate(bn.weights):
            assert v.path.endswith(("gamma", "beta", "moving_mean", "moving_variance")[i])
            np.testing.assert_array_equal(f[f"layer1/layers/basic_block_1/b2/vars/{i}"][()], v.numpy())


def test_weights_h5_paths_follow_layer_order_not_creation_order(keras_model, tmp_path):
    """GoogLeNet: `layers/conv2d_<k>` is the k-th Conv2D of model.layers (depth order), not the k-th created; the
    `name` attribute keeps the layer's (auto) name, whose counter follows creation, i.e. the tutorial's code."""
    model = keras_model("googlenet_004")
    path = tools.save_keras_weights(model, tmp_path / "googlenet.weights.h5")
    with h5py.File(path, "r") as f:
        groups = [k for k in f["layers"] if k.startswith("conv2d")]
        assert groups[:4] == ["conv2d", "conv2d_1", "conv2d_10", "conv2d_11"]  # h5py: alphabetical
        by_path = sorted(groups, key=_suffix)
        names = [f[f"layers/{g}/vars"].attrs["name"] for g in by_path]
        shapes = {g: f[f"layers/{g}/vars/0"].shape for g in groups}
    assert names != sorted(names, key=_suffix)  # path order and creation order differ
    creation = [g for _, g in sorted(zip(names, by_path), key=lambda t: _suffix(t[0]))]
    # the first Inception(64) on 192 channels, in the tutorial's code order: 1x1, 3x3 reduce, 3x3, "5x5" reduce,
    # "5x5" (1x1), pool projection
    code_order = [(1, 1, 192, 64), (1, 1, 192, 64), (3, 3, 64, 64), (1, 1, 192, 64), (1, 1, 64, 64), (1, 1, 192, 64)]
    assert [shapes[g] for g in creation[2:8]] == code_order
    assert [shapes[g] for g in by_path[2:8]] != code_order  # same shapes, other order: shapes cannot tell
    # path k <-> the k-th Conv2D of model.layers
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == names


def test_legacy_h5_structure(keras_model, tmp_path):
    model = keras_model("googlenet_004")
    path = tools.save_keras_legacy_h5(model, tmp_path / "googlenet.h5")
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights = f["model_weights"]
        layer_names = _texts(weights.attrs["layer_names"])
        assert layer_names == [layer.name for layer in model.layers]  # model.layers (depth) order
        conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
        group = weights[conv.name]
        weight_names = _texts(group.attrs["weight_names"])
        assert weight_names == [f"{conv.name}/kernel", f"{conv.name}/bias"]  # Keras 3: no ':0' suffix
        assert group[weight_names[0]].shape == (7, 7, 3, 64)
    layers = {entry["name"]: entry for entry in config["config"]["layers"]}
    assert config["class_name"] == "Functional"
    assert layers[conv.name]["config"]["padding"] == "same"
    assert layers[conv.name]["config"]["activation"] == "relu"
    bn = layers[model.layers[2].name]
    assert bn["class_name"] == "BatchNormalization" and bn["config"]["epsilon"] == 0.001
    # the graph: each layer's inputs by name
    assert bn["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] == conv.name


def test_legacy_h5_densenet_config(keras_model, tmp_path):
    path = tools.save_keras_legacy_h5(keras_model("densenet121_004"), tmp_path / "densenet.h5")
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        names = _texts(f["model_weights/conv1_scale"].attrs["weight_names"])
    layers = {entry["name"]: entry for entry in config["config"]["layers"]}
    assert layers["conv1_scale"]["class_name"] == "Scale"
    assert layers["conv1_bn"]["config"]["epsilon"] == pytest.approx(1.1e-5)
    assert names == ["conv1_scale/gamma", "conv1_scale/beta"]


def test_legacy_weights_subclassed_order(keras_model, tmp_path):
    """For a nested layer (ResNet-18's Sequentials) the legacy weight_names list all trainable weights first and
    the BatchNorm moving statistics after them: not layer by layer."""
    model = keras_model("resnet18_000")
    path = tools.save_keras_legacy_weights_h5(model, tmp_path / "resnet18.h5")
    with h5py.File(path, "r") as f:
        names = _texts(f[model.layer2.name].attrs["weight_names"])
        assert f[model.layer2.name][names[0]].shape == (3, 3, 64, 128)
    ends = [n.rsplit("/", 1)[-1] for n in names]
    assert len(ends) == 26
    assert set(ends[:18]) == {"kernel", "bias", "gamma", "beta"}
    assert ends[18:] == ["moving_mean", "moving_variance"] * 4


# --------------------------------------------------------------------------------------------------------------------
# Layouts and TF 'same' padding, Keras layer vs torch
# --------------------------------------------------------------------------------------------------------------------


def tf_same(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF/Keras 'same': output ceil(size / stride); the odd pixel of padding goes at the end (bottom/right)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv_case(size, kernel, stride, cin=3, cout=4, seed=0):
    rng = np.random.default_rng(seed)
    layer = keras.layers.Conv2D(cout, kernel, strides=stride, padding="same")
    x = rng.normal(size=(1, size, size, cin)).astype("float32")
    layer.build(x.shape)
    layer.set_weights(
        [rng.normal(size=(*kernel, cin, cout)).astype("float32"), rng.normal(size=cout).astype("float32")]
    )
    return layer, x


@pytest.mark.parametrize(
    "size, kernel, stride, pads",
    [
        (54, (5, 5), 2, (1, 2, 1, 2)),  # ZF-Net conv2d_1
        (224, (7, 7), 2, (2, 3, 2, 3)),  # GoogLeNet's stem
        (112, (3, 2), 1, (1, 1, 0, 1)),  # VGG-16's (3, 2) conv2d_2
        (8, (3, 3), 2, (0, 1, 0, 1)),  # ResNet-18's layer4[0].c1
        (57, (3, 3), 2, (1, 1, 1, 1)),  # ResNet50's first 3x3/2 projection shortcut: symmetric
    ],
)
def test_same_padding_conv(size, kernel, stride, pads):
    top, bottom, left, right = pads
    assert tf_same(size, kernel[0], stride) == (top, bottom) and tf_same(size, kernel[1], stride) == (left, right)
    layer, x = _conv_case(size, kernel, stride)
    expected = np.asarray(layer(x).detach()).transpose(0, 3, 1, 2)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    w = torch.from_numpy(layer.get_weights()[0]).permute(3, 2, 0, 1)  # HWIO -> OIHW
    b = torch.from_numpy(layer.get_weights()[1])
    got = F.conv2d(F.pad(xt, (left, right, top, bottom)), w, b, stride=stride).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    if (top, left) != (bottom, right):  # PyTorch's symmetric padding gives another result
        sym = F.conv2d(xt, w, b, stride=stride, padding=(kernel[0] // 2, kernel[1] // 2)).numpy()
        assert sym.shape != expected.shape or not np.allclose(sym, expected, atol=1e-3)


@pytest.mark.parametrize("size", [112, 56, 28, 14, 114])  # GoogLeNet's four 3x3/2 pools, ResNet50's (114)
def test_same_max_pool_pads_with_minus_infinity(size):
    """TF's MaxPool 'same' ignores the padding (-inf). Keras on torch pads asymmetric cases by edge replication,
    which gives the same maxima (the replicated pixel is in the window already); zeros would not."""
    x = -np.abs(np.random.default_rng(size).normal(size=(1, size, size, 2))).astype("float32") - 0.1  # after BN
    expected = np.asarray(keras.layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same")(x)).transpose(0, 3, 1, 2)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    assert tf_same(size, 3, 2) == (0, 1)
    got = F.max_pool2d(F.pad(xt, (0, 1, 0, 1), value=float("-inf")), 3, 2).numpy()
    np.testing.assert_array_equal(got, expected)
    zero = F.max_pool2d(F.pad(xt, (0, 1, 0, 1)), 3, 2).numpy()
    assert not np.array_equal(zero, expected)  # zero padding would win over negative activations


def test_same_average_pool_padding():
    """TF's AvgPool 'same' divides by the real pixels of each window (padding excluded). Keras 3 on the torch
    backend does that only when the padding is symmetric (``avg_pool2d(padding=p, count_include_pad=False)``);
    asymmetric padding it applies with ``F.pad(mode="replicate")``, so the edge values are averaged in: not
    TF's result. None of the tutorials' networks pools so (GoogLeNet's 7x7/7 'same' on 7x7 pads nothing)."""
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 2)).astype("float32")
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    # symmetric (3x3/1 on 8x8: 1 + 1): padding excluded, as in TF
    sym = np.asarray(keras.layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(sym, F.avg_pool2d(xt, 3, 1, padding=1, count_include_pad=False).numpy(), rtol=1e-6)
    # asymmetric (3x3/2 on 8x8: 0 + 1)
    assert tf_same(8, 3, 2) == (0, 1)
    asym = np.asarray(keras.layers.AveragePooling2D((3, 3), strides=(2, 2), padding="same")(x)).transpose(0, 3, 1, 2)
    pad = (0, 1, 0, 1)
    replicated = F.avg_pool2d(F.pad(xt, pad, mode="replicate"), 3, 2).numpy()
    np.testing.assert_allclose(asym, replicated, rtol=1e-6)
    total = F.avg_pool2d(F.pad(xt, pad), 3, 2, divisor_override=1)
    count = F.avg_pool2d(F.pad(torch.ones_like(xt), pad), 3, 2, divisor_override=1)
    tf_semantics = (total / count).numpy()
    assert not np.allclose(asym, tf_semantics, atol=1e-3)
    np.testing.assert_allclose(asym[..., :-1, :-1], tf_semantics[..., :-1, :-1], rtol=1e-5)  # same off the edge
    # GoogLeNet's AveragePooling2D(7, 7, 'same') on its 7x7 map pads nothing: the global mean
    y = np.random.default_rng(1).normal(size=(1, 7, 7, 3)).astype("float32")
    pooled = np.asarray(keras.layers.AveragePooling2D((7, 7), strides=(7, 7), padding="same")(y))
    np.testing.assert_allclose(pooled[0, 0, 0], y.mean(axis=(0, 1, 2)), rtol=1e-5)


def test_lenet_from_weights_h5_in_torch(keras_model, tmp_path):
    """The layouts a loader needs, end to end on LeNet, from the .weights.h5 with h5py and torch only: Conv2D
    kernels HWIO -> OIHW; Dense kernels (in, out) -> (out, in); the first Dense after Flatten takes NHWC-ordered
    features (h, w, c), so its rows are permuted to PyTorch's (c, h, w)."""
    model = keras_model("lenet_004")
    path = tools.save_keras_weights(model, tmp_path / "lenet.weights.h5")
    with h5py.File(path, "r") as f:
        w = {
            g: [torch.from_numpy(f[f"layers/{g}/vars/{i}"][()]) for i in range(2)]
            for g in f["layers"]
            if "0" in f[f"layers/{g}/vars"]
        }
    x = batch("lenet_004", 5)
    h = torch.from_numpy(x)
    h = F.max_pool2d(F.relu(F.conv2d(h, w["conv2d"][0].permute(3, 2, 0, 1), w["conv2d"][1])), 2)
    feat = F.max_pool2d(F.relu(F.conv2d(h, w["conv2d_1"][0].permute(3, 2, 0, 1), w["conv2d_1"][1])), 2)

    def head(flat, dense_kernel):
        hidden = F.relu(F.linear(flat, dense_kernel.T, w["dense"][1]))
        return F.linear(hidden, w["dense_1"][0].T, w["dense_1"][1]).numpy()

    kernel = w["dense"][0]  # (4*4*64, 100), rows in (h, w, c) order
    nchw_kernel = kernel.reshape(4, 4, 64, 100).permute(2, 0, 1, 3).reshape(1024, 100)
    expected = tools.keras_logits(model, x)
    tol = dict(rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))
    np.testing.assert_allclose(head(feat.flatten(1), nchw_kernel), expected, **tol)  # PyTorch's flatten, permuted
    np.testing.assert_allclose(head(feat.permute(0, 2, 3, 1).flatten(1), kernel), expected, **tol)  # or NHWC's
    assert not np.allclose(head(feat.flatten(1), kernel), expected, **tol)  # neither: wrong


def test_the_cli_takes_a_tutorial_keras_file(keras_model, tmp_path, capsys, caplog):
    """A tutorial reader's file on the command line: eval, predict and train --pretrained with tutorial 004's LeNet
    weights (.weights.h5), on the bundled digits resized to the network's 28x28."""
    from PIL import Image

    from reslab.cli import main

    path = tools.save_keras_weights(keras_model("lenet_004"), tmp_path / "lenet.weights.h5")
    image = tmp_path / "digit.png"
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype("uint8")).save(image)
    assert main(["predict", "--model", "tutorial_lenet", "--pretrained", str(path), str(image), "--topk", "2"]) == 0
    out = capsys.readouterr()
    assert "records no preprocessing" in caplog.text and len(out.out.strip().splitlines()) == 1
    assert main(["eval", "--model", "tutorial_lenet", "--pretrained", str(path), "--data", "digits"]) == 0
    assert '"n": 359' in capsys.readouterr().out.replace(", ", ",\n").replace(",\n", ", ")
    run = tmp_path / "run"
    argv = ["train", "--model", "tutorial_lenet", "--pretrained", str(path), "--data", "digits", "--epochs", "1"]
    argv += ["--image-size", "28"]  # the file records no preprocessing: the network's 28 px, asked for
    assert main([*argv, "--out", str(run), "-q", "--progress", "none", "--device", "cpu"]) == 0
    assert (run / "best.pt").is_file()
    wrong = tools.save_keras_weights(keras_model("alexnet_004"), tmp_path / "alexnet.weights.h5")
    capsys.readouterr()  # (Keras's own warnings from building AlexNet)
    assert main(["predict", "--model", "tutorial_lenet", "--pretrained", str(wrong), str(image)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reslab: error: ") and "tutorial_lenet has 2" in err[0]
