"""What an exported model carries besides its graph: the metadata every format writes, defined once.

Every value is a string (ONNX metadata properties, TorchScript ``_extra_files`` and safetensors metadata are
all str -> str): plain strings for ``reslab_version`` and ``model_name``, JSON for the rest. Readers get the
parsed values back from :func:`parse_metadata`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, DataError

#: key -> what it holds; every key is written by every format that carries metadata
METADATA_KEYS = {
    "reslab_version": "the reslab version that wrote the file (a plain string)",
    "model_name": "the reslab registry name (a plain string)",
    "model_args": "constructor arguments beyond the registered spec (JSON object)",
    "class_names": "one name per output, index = label (JSON list)",
    "preprocessing": "reslab.weights.preprocessing.Preprocessing as a dict (JSON object)",
    "input_size": "(C, H, W) the model was exported and checked at (JSON list)",
}
#: the keys whose values are plain strings, not JSON
PLAIN_KEYS = ("reslab_version", "model_name")


def preprocessing_dict(info: dict[str, Any]) -> dict[str, Any]:
    """A :class:`~reslab.weights.preprocessing.Preprocessing` dict from a data ``info`` (a checkpoint's
    ``data_info`` or :func:`reslab.training.loading.load_model`'s ``info``), checked
    (:func:`reslab.training.loading.info_preprocessing` reads it).

    Raises:
        ConfigError: values a Preprocessing does not accept (names the key).
    """
    from ..training.loading import info_preprocessing

    return checked_preprocessing(info_preprocessing(info))


def checked_preprocessing(prep: dict[str, Any]) -> dict[str, Any]:
    """``prep`` as a :class:`~reslab.weights.preprocessing.Preprocessing` accepts it (plain types).

    Raises:
        ConfigError: values a Preprocessing does not accept (names the key).
    """
    from ..weights.preprocessing import Preprocessing

    return Preprocessing.from_dict(prep).to_dict()


@dataclass(frozen=True)
class ExportOptions:
    """What every exporter takes besides the network and the file: the metadata written with it and how
    the example input is made and checked.

    Attributes:
        input_size: (C, H, W) of the example input (H and W are fixed in traced graphs; the batch is free).
        model_name, model_args, class_names, preprocessing: the metadata (:data:`METADATA_KEYS`).
        opset: ONNX only: the opset (default: the exporter's).
        batch: the batch of the traced example input (the batch axis stays dynamic).
        reference: the network the written file is checked against (default: the exported one; the unfolded
            network where the exported one is BN-folded).
    """

    input_size: tuple[int, int, int] | list[int]
    model_name: str
    model_args: dict[str, Any] | None = None
    class_names: list[str] | None = None
    preprocessing: dict[str, Any] | None = None
    opset: int | None = None
    batch: int = 1
    reference: Any = None

    def metadata(self) -> dict[str, str]:
        """The metadata as strings (:func:`build_metadata`)."""
        return build_metadata(
            model_name=self.model_name,
            model_args=self.model_args,
            class_names=self.class_names,
            preprocessing=self.preprocessing,
            input_size=self.input_size,
        )

    def checked_against(self, model: Any) -> Any:
        """The network the written file must reproduce: ``reference``, else ``model``."""
        return self.reference if self.reference is not None else model


def build_metadata(
    *,
    model_name: str,
    model_args: dict[str, Any] | None,
    class_names: list[str] | None,
    preprocessing: dict[str, Any] | None,
    input_size: tuple[int, ...] | list[int],
) -> dict[str, str]:
    """The metadata as strings (see :data:`METADATA_KEYS`).

    Raises:
        ConfigError: a value that is not JSON-serialisable, or an input size that is not (C, H, W).
    """
    from .. import __version__

    if len(input_size) != 3:
        raise ConfigError(f"input_size must be (C, H, W), got {tuple(input_size)}")
    values = {
        "model_args": dict(model_args or {}),
        "class_names": [str(n) for n in class_names] if class_names is not None else None,
        "preprocessing": preprocessing,
        "input_size": [int(v) for v in input_size],
    }
    try:
        encoded = {k: json.dumps(v) for k, v in values.items()}
    except TypeError as e:
        raise ConfigError(f"export metadata must be JSON-serialisable: {e}") from None
    return {"reslab_version": str(__version__), "model_name": str(model_name), **encoded}


def parse_metadata(props: dict[str, str], source: str) -> dict[str, Any]:
    """The values of :func:`build_metadata`'s strings, parsed (unknown keys are left out).

    Raises:
        DataError: no reslab metadata in ``props`` (``source`` names the file), or a value that is not JSON.
    """
    if "reslab_version" not in props or "model_name" not in props:
        raise DataError(f"{source} has no reslab metadata (it was not written by reslab export)")
    out: dict[str, Any] = {}
    for key in METADATA_KEYS:
        if key not in props:
            continue
        if key in PLAIN_KEYS:
            out[key] = props[key]
            continue
        try:
            out[key] = json.loads(props[key])
        except json.JSONDecodeError as e:
            raise DataError(f"{source}: reslab metadata {key!r} is not JSON ({e})") from None
    return out
