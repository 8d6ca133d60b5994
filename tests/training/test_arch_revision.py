"""Checkpoints of networks whose computation a later fix changed are refused, not silently reinterpreted.

Issue 9 fixed where pre-activation ResNets activate before their first units split (and the stride of
preact_resnet164/1001's bottlenecks): an older checkpoint of such a network has the same keys, so it
would load strictly and compute another function. Checkpoints now record the network's revision.
"""

from __future__ import annotations

import pytest
import torch

import reslab
from reslab.cli import main
from reslab.errors import CheckpointError
from reslab.training import evaluate, train

DATA = dict(data="synthetic", image_size=8, data_args={"num_classes": 4, "num_samples": 64}, batch_size=32)


def _run(tmp_path, **model):
    out = tmp_path / "run"
    train(epochs=1, device="cpu", out=str(out), progress="none", ema=False, **model, **DATA)
    return out


def _as_older_reslab(path, **config):
    """Rewrite a checkpoint as reslab wrote it before revisions were recorded (``config``: changed keys)."""
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["arch_revision"] == 2
    del ckpt["arch_revision"]
    ckpt["config"].update(config)
    if config:
        ckpt["finished"] = False
    torch.save(ckpt, path)


def test_checkpoints_record_the_revision_and_load(tmp_path):
    run = _run(tmp_path, model="resnet20", model_args={"unit": "full_preact", "widths": [4, 8, 8]})
    assert torch.load(run / "last.pt", weights_only=True)["arch_revision"] == 2
    assert evaluate(run / "last.pt", out=tmp_path).n == 16


def test_an_older_preactivation_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    run = _run(tmp_path, model="resnet20", model_args={"unit": "full_preact", "widths": [4, 8, 8]})
    _as_older_reslab(run / "last.pt", epochs=2)  # a run with an epoch left to resume
    with pytest.raises(CheckpointError, match="older reslab.*pre-activation") as err:
        evaluate(run / "last.pt", out=tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="older reslab"):  # nor resumed into the new network
        train(resume=run, progress="none")
    with pytest.raises(CheckpointError, match="older reslab"):  # nor used as pretrained weights
        reslab.create_model("resnet20", pretrained=str(run / "last.pt"), unit="full_preact", widths=[4, 8, 8])
    assert main(["eval", "--checkpoint", str(run / "last.pt"), "--out", str(tmp_path / "e")]) == 2
    assert "older reslab" in capsys.readouterr().err


def test_an_older_checkpoint_of_an_unchanged_network_still_loads(tmp_path):
    run = _run(tmp_path, model="resnet20", model_args={"widths": [4, 8, 8]})  # original units: unchanged
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["arch_revision"] == 2
    del ckpt["arch_revision"]
    torch.save(ckpt, run / "last.pt")
    assert evaluate(run / "last.pt", out=tmp_path).n == 16


@pytest.mark.parametrize(
    ("name", "args", "changed"),
    [
        ("preact_resnet110", {}, True),  # the first unit's identity shortcut now carries BN-ReLU(conv1)
        ("preact_resnet164", {}, True),  # stride moved to the first 1x1
        ("resnet20", {"unit": "relu_only_preact"}, True),
        ("resnet50v2", {}, False),  # Keras layout: projection first units, stride on the 3x3: as before
        ("resnet56", {}, False),
        ("resnet50", {}, False),
    ],
)
def test_which_networks_changed_in_revision_2(name, args, changed):
    with torch.device("meta"):
        model = reslab.create_model(name, **args)
    assert (model.revision_change(1) is not None) == changed
    assert model.revision_change(2) is None
