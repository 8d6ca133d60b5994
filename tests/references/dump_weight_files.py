"""Write the HDF5 trees of the Keras references' weight files (the evidence behind WEIGHT_FILES.md).

    python -m tests.references.dump_weight_files OUT_DIR [MODEL ...]

For each model (all eight by default), in a fresh Keras session (so auto names start at ``conv2d``): build,
randomise, save ``.weights.h5``, the legacy full-model ``.h5`` (not for the subclassed ResNet-18, which cannot be
saved so) and the legacy weights-only ``.h5``; write ``OUT_DIR/<model>.<kind>.txt`` (:func:`tools.h5_tree`),
``OUT_DIR/<model>.model_config.json`` (the full-model file's ``model_config``, indented) and
``OUT_DIR/<model>.layers.txt`` (``model.layers`` in order, with class, output shape and weight shapes), then
delete the weight files (VGG-16's are 0.55 GB each).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import keras  # noqa: E402

from . import tools  # noqa: E402
from .tutorial_keras import BUILDERS  # noqa: E402


def layer_table(model) -> str:
    rows = []
    for i, layer in enumerate(model.layers):
        shapes = [tuple(w.shape) for w in layer.weights]
        try:
            out = layer.output.shape
        except (AttributeError, ValueError):
            out = "-"
        rows.append(f"{i:4d} {layer.name:28s} {type(layer).__name__:22s} out={out} weights={shapes}")
    return "\n".join(rows) + "\n"


def dump(name: str, out_dir: Path) -> None:
    keras.backend.clear_session()
    model = BUILDERS[name]()
    tools.randomise_keras(model, seed=0)
    (out_dir / f"{name}.layers.txt").write_text(layer_table(model))
    with tempfile.TemporaryDirectory() as tmp:
        path = tools.save_keras_weights(model, Path(tmp) / f"{name}.weights.h5")
        (out_dir / f"{name}.weights_h5.txt").write_text(tools.h5_tree(path))
        path.unlink()
        try:
            path = tools.save_keras_legacy_h5(model, Path(tmp) / f"{name}.h5")
        except NotImplementedError as e:  # the subclassed ResNet-18: no config
            (out_dir / f"{name}.legacy_full_h5.txt").write_text(f"model.save('{name}.h5') raised {e!r}\n")
        else:
            (out_dir / f"{name}.legacy_full_h5.txt").write_text(tools.h5_tree(path))
            with h5py.File(path, "r") as f:
                config = json.loads(f.attrs["model_config"])
            (out_dir / f"{name}.model_config.json").write_text(json.dumps(config, indent=1) + "\n")
            path.unlink()
        path = tools.save_keras_legacy_weights_h5(model, Path(tmp) / f"{name}_weights.h5")
        (out_dir / f"{name}.legacy_weights_h5.txt").write_text(tools.h5_tree(path))
        path.unlink()
    print(name, "done", flush=True)


def main(argv: list[str]) -> None:
    out_dir = Path(argv[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in argv[1:] or list(BUILDERS):
        dump(name, out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
