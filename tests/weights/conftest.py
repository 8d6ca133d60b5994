"""Keras parity tests run Keras 3 on the torch backend (a test-only dependency)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def keras():
    return pytest.importorskip("keras", reason="keras is a dev dependency: pip install -e .[dev]")


def randomise_keras_bn(keras_model, seed: int = 0) -> None:
    """Give every BatchNormalization non-trivial gamma/beta/moving statistics (fresh ones are 1/0/0/1,
    which would hide a swapped mean and variance or a wrong epsilon)."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in keras_model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            names = [w.path.rsplit("/", 1)[-1] for w in layer.weights]
            new = []
            for name, w in zip(names, layer.get_weights()):
                if name in ("gamma", "moving_variance"):
                    new.append(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
                else:
                    new.append(rng.normal(0, 0.2, w.shape).astype("float32"))
            layer.set_weights(new)


def keras_logits(keras_model, x_nchw: np.ndarray) -> np.ndarray:
    """Run a Keras model (NHWC) in inference mode on an NCHW batch; NumPy logits."""
    out = keras_model(np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)), training=False)
    return out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)


def he_normal_weights(keras_model, seed: int = 0) -> None:
    """Keras's default Glorot init shrinks VGG's activations layer by layer (logits ~1e-2), which
    would make a 1e-4 tolerance meaningless: give every layer He-normal kernels and non-zero biases."""
    rng = np.random.default_rng(seed)
    for layer in keras_model.layers:
        weights = layer.get_weights()
        if len(weights) == 2:
            kernel, bias = weights
            fan_in = int(np.prod(kernel.shape[:-1]))
            kernel = rng.normal(0, np.sqrt(2.0 / fan_in), kernel.shape).astype("float32")
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape).astype("float32")])
