"""Transfer learning in the trainer: pretrained weights, freezing, discriminative learning rates, the
fine-tuning layer, the weights' preprocessing through the data pipeline and the checkpoint."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from PIL import Image

import reslab
from reslab import create_model
from reslab.data import build_data, preprocess_image
from reslab.errors import ConfigError
from reslab.training.checkpoint import load_checkpoint
from reslab.training.config import TrainConfig, resolve_config
from reslab.training.freeze import freeze_model, parse_freeze
from reslab.training.optim import build_optimizer, build_scheduler
from reslab.training.trainer import Trainer
from reslab.weights.layouts.reslab import FORMAT

NARROW = {"widths": [4, 8, 8]}


def small_resnet(num_classes: int = 10, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("resnet20", num_classes=num_classes, **NARROW)


def backbone_state(model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model_state.items() if not k.startswith("fc.")}


# -- freezing ----------------------------------------------------------------------------------------
def test_freeze_backbone_no_grad_and_eval_mode_through_train():
    model = small_resnet()
    info = freeze_model(model, "backbone")
    assert info.trainable_params == sum(p.numel() for p in model.fc.parameters())
    model.train()  # what the trainer does each epoch: the frozen BNs must stay in eval mode
    bns = [m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(bn.training for bn in bns) and model.fc.training
    stats = [bn.running_mean.clone() for bn in bns]
    x = torch.randn(4, 3, 8, 8)
    features = model.forward_features(x)
    assert features.grad_fn is None  # autograd recorded nothing below the head
    model.forward_head(features).sum().backward()
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("fc."))
    assert model.fc.weight.grad is not None
    assert all(torch.equal(a, bn.running_mean) for a, bn in zip(stats, bns))


def test_freeze_stages_covers_the_stem_and_first_stages():
    model = small_resnet()
    freeze_model(model, "stages:1")
    frozen = {n.rsplit(".", 1)[0].split(".")[0] for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "bn1", "layer1"}
    model.train()
    assert not model.layer1[0].bn1.training and model.layer2[0].bn1.training
    # the stage modules feature_info names: VGG's are positions in `features`
    with torch.device("meta"):  # names and shapes are all freezing needs
        vgg = create_model("vgg11_bn")
    freeze_model(vgg, "stages:2")
    last = int(vgg.feature_info[1]["module"].split(".")[1])
    for name, p in vgg.named_parameters():
        if name.startswith("features."):
            assert p.requires_grad == (int(name.split(".")[1]) > last), name
    assert all(p.requires_grad for p in vgg.classifier.parameters())


@pytest.mark.parametrize("value", ["all", "stages:0", "stages:x", "stages", 3, None])
def test_bad_freeze_values_are_one_line_errors(value):
    with pytest.raises(ConfigError, match=r"freeze must be none, backbone or stages:N"):
        parse_freeze(value)
    with pytest.raises(ConfigError, match="freeze must be"):
        TrainConfig(freeze=value).validate()


def test_more_stages_than_the_network_has():
    with pytest.raises(ConfigError, match=r"freeze=stages:4: resnet20 has 3 stages; use stages:1..3"):
        freeze_model(small_resnet(), "stages:4")


# -- learning rates ----------------------------------------------------------------------------------
def test_head_lr_and_backbone_scale_make_groups_that_schedules_scale_alike():
    model = small_resnet()
    cfg = TrainConfig(
        lr=0.1, head_lr=0.01, backbone_lr_scale=0.1, weight_decay=5e-4, schedule="cosine", epochs=2
    ).validate()
    opt = build_optimizer(model, cfg)
    head_ids = {id(p) for p in model.fc.parameters()}
    by_name = {}
    for g in opt.param_groups:
        by_name.setdefault(g["name"], []).append(g)
        assert all((id(p) in head_ids) == (g["name"] == "head") for p in g["params"])
        assert g["weight_decay"] == (0.0 if all(p.ndim <= 1 for p in g["params"]) else 5e-4)  # BN/bias rule kept
    assert opt.param_groups[0]["name"] == "head"  # the trainer logs the first group's rate
    assert {g["lr"] for g in by_name["head"]} == {0.01}
    assert [g["lr"] for g in by_name["backbone"]] == pytest.approx([0.001, 0.001])
    sched = build_scheduler(opt, cfg, steps_per_epoch=5)
    for _ in range(4):
        opt.step()
        sched.step()
    head, backbone = by_name["head"][0]["lr"], by_name["backbone"][0]["lr"]
    assert 0 < head < 0.01 and backbone == pytest.approx(head * 0.1)


def test_frozen_parameters_are_not_given_to_the_optimizer():
    model = small_resnet()
    freeze_model(model, "backbone")
    opt = build_optimizer(model, TrainConfig().validate())
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in model.fc.parameters()}


def test_backbone_lr_scale_zero_says_use_freeze():
    with pytest.raises(ConfigError, match=r"backbone_lr_scale 0 .*use freeze: backbone \(--freeze backbone\)"):
        TrainConfig(backbone_lr_scale=0).validate()
    with pytest.raises(ConfigError, match="head_lr must be > 0"):
        TrainConfig(head_lr=0.0).validate()


# -- the fine-tuning layer ---------------------------------------------------------------------------
def test_finetune_defaults_apply_under_the_recipe_and_flags_only_when_pretrained(tmp_path):
    plain = resolve_config(None)
    assert (plain.optimizer, plain.freeze, plain.pretrained) == ("sgd", "none", None)
    notes: list[str] = []
    ft = resolve_config(None, notes=notes, pretrained="tv_in1k", epochs=3)
    assert (
        ft.optimizer,
        ft.lr,
        ft.backbone_lr_scale,
        ft.freeze,
        ft.schedule,
        ft.label_smoothing,
        ft.ema,
        ft.nesterov,
    ) == ("adam", 1e-3, 0.1, "none", "constant", 0.0, False, False)
    assert ft.epochs == 3  # a flag wins over the layer
    assert len(notes) == 1 and "finetune.yaml" in notes[0] and "optimizer=adam" in notes[0]
    assert "epochs" not in notes[0]  # the note lists only the defaults that applied
    recipe = tmp_path / "r.yaml"
    recipe.write_text("pretrained: default\noptimizer: sgd\nlr: 0.01\n")
    mine = resolve_config(recipe)
    assert (mine.pretrained, mine.optimizer, mine.lr, mine.freeze) == (True, "sgd", 0.01, "none")
    assert "finetune" not in reslab.training.config.shipped_configs()


def test_pretrained_values():
    for value, expected in ((True, True), ("default", True), (None, None), (False, None), ("tv_in1k", "tv_in1k")):
        assert TrainConfig(pretrained=value).validate().pretrained == expected
    with pytest.raises(ConfigError, match="pretrained must be true / default, a weights tag"):
        TrainConfig(pretrained=3).validate()


# -- the data pipeline's preprocessing ---------------------------------------------------------------
def _folder(root, n=3, size=20):
    g = torch.Generator().manual_seed(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            pixels = (torch.rand(size, size + 6, 3, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root


def test_build_data_takes_mean_std_resize_interpolation_crop(tmp_path):
    root = _folder(tmp_path / "imgs")
    b = build_data(
        "folder",
        root,
        image_size=16,
        mean=[0.1, 0.2, 0.3],
        std=[0.5, 0.5, 0.5],
        resize=18,
        interpolation="bicubic",
        crop="squash",
        val_split=0.5,
        batch_size=4,
    )
    assert b.mean == (0.1, 0.2, 0.3) and b.info["resize"] == 18
    assert (b.info["interpolation"], b.info["crop_mode"]) == ("bicubic", "squash")
    assert b.info["preprocessing"]["crop"] == "squash" and b.info["preprocessing"]["mean"] == [0.1, 0.2, 0.3]
    arrays = build_data("synthetic", mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], num_samples=16)
    assert arrays.info["mean"] == [0.5] * 3 and arrays.info["std"] == [0.25] * 3
    for kwargs, match in (
        ({"mean": [0.5, 0.5, 0.5]}, "mean was given without std"),
        ({"mean": [0.5], "std": [0.5, 0.5]}, "mean has 1 values but std has 2"),
        ({"mean": [0.5, 0.5], "std": [0.5, 0.5]}, "mean/std have 2 values, but synthetic images have 3 channel"),
        ({"mean": [0.5] * 3, "std": [0.0] * 3}, "std values must be > 0"),
        ({"resize": 40}, "option resize=40 does not apply to synthetic; it applies to folder"),
    ):
        with pytest.raises(ConfigError, match=match):
            build_data("synthetic", num_samples=16, **kwargs)
    for kwargs, match in (
        ({"interpolation": "lanczos"}, "interpolation must be one of nearest, bilinear, bicubic, got 'lanczos'"),
        ({"crop": "random"}, "crop must be center or squash"),
        ({"resize": 0}, "resize must be an integer >= 1"),
    ):
        with pytest.raises(ConfigError, match=match):
            build_data("folder", root, **kwargs)


def test_preprocess_image_follows_interpolation_and_crop_mode(tmp_path):
    img = Image.fromarray((torch.rand(20, 40, 3) * 255).to(torch.uint8).numpy())
    info = {"input_size": [3, 8, 8], "mean": [0.0] * 3, "std": [1.0] * 3, "resize": 8}
    centre = preprocess_image(img, info)
    squash = preprocess_image(img, {**info, "crop_mode": "squash"})
    expected = torch.from_numpy(__import__("numpy").array(img.resize((8, 8), Image.Resampling.BILINEAR)))
    assert torch.allclose(squash[0], expected.permute(2, 0, 1).float() / 255)
    assert not torch.equal(centre, squash)
    assert not torch.equal(preprocess_image(img, {**info, "interpolation": "nearest"}), centre)


# -- training from pretrained weights -----------------------------------------------------------------
def _reslab_weights(path, preprocessing=None, seed=0):
    """A reslab checkpoint holding a 10-class narrow resnet20 (and, optionally, its preprocessing)."""
    model = small_resnet(seed=seed)
    info = {"preprocessing": preprocessing} if preprocessing else {}
    torch.save(
        {
            "format": FORMAT,
            "model": model.state_dict(),
            "model_name": "resnet20",
            "model_args": NARROW,
            "num_classes": 10,
            "in_chans": 3,
            "data_info": info,
        },
        path,
    )
    return model


def test_frozen_run_keeps_the_backbone_and_resumes_without_the_weights(tmp_path, monkeypatch):
    weights = tmp_path / "weights.pth"
    torch.save(small_resnet().state_dict(), weights)  # torchvision layout: a plain state dict
    original = torch.load(weights)
    cfg = dict(
        model="resnet20",
        model_args=NARROW,
        pretrained=str(weights),
        data="synthetic",
        image_size=8,
        data_args={"num_samples": 64, "num_classes": 4},
        batch_size=16,
        device="cpu",
        epochs=2,
        freeze="backbone",
        ema=True,
        out=str(tmp_path / "run"),
    )
    train_epoch = Trainer._train_epoch

    def interrupted_in_epoch_2(self, *args):
        if self.epoch == 1 and self.step == 0:
            os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C during the second epoch's first step
        return train_epoch(self, *args)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted_in_epoch_2)
    first = reslab.train(cfg, progress="none")
    assert first.interrupted == "SIGINT"
    monkeypatch.setattr(Trainer, "_train_epoch", train_epoch)
    log = (first.run_dir / "train.log").read_text()
    assert "fine-tuning defaults (finetune.yaml" in log and "freeze backbone:" in log
    assert "record no preprocessing" in log
    # resuming rebuilds the network from the checkpoint: the weights file is not read again
    weights.unlink()
    resumed = reslab.train(resume=first.run_dir, progress="none")
    assert resumed.finished
    ckpt = load_checkpoint(resumed.run_dir / "last.pt")
    assert ckpt["config"]["freeze"] == "backbone" and ckpt["config"]["optimizer"] == "adam"
    for key, value in backbone_state(original).items():
        assert torch.equal(ckpt["model"][key], value), key  # BN running statistics included
        assert torch.equal(ckpt["ema"]["module"][key], value), key  # EMA still works, and keeps them
    assert not torch.equal(ckpt["model"]["fc.weight"][:, 0], original["fc.weight"][:4, 0])


def test_weights_arguments_are_recorded_for_eval_and_predict(tmp_path):
    weights = tmp_path / "w.pt"
    _reslab_weights(weights)
    result = reslab.train(
        model="resnet20",
        pretrained=str(weights),
        data="synthetic",
        image_size=8,
        data_args={"num_samples": 32},
        batch_size=16,
        device="cpu",
        epochs=1,
        out=str(tmp_path / "run"),
        progress="none",
    )
    ckpt = load_checkpoint(result.run_dir / "last.pt")
    assert ckpt["model_args"] == NARROW  # the weights' own arguments, although the run gave none


def _weights_with_preprocessing(tmp_path):
    """A reslab checkpoint recording a distinctive preprocessing (bicubic, odd mean / std), and an image folder."""
    prep = {
        "input_size": [3, 16, 16],
        "resize": 20,
        "crop": "center",
        "interpolation": "bicubic",
        "mean": [0.2, 0.3, 0.4],
        "std": [0.3, 0.2, 0.1],
        "mode": "torch",
        "channel_order": "RGB",
    }
    weights = tmp_path / "w.pt"
    _reslab_weights(weights, prep)
    return prep, weights, _folder(tmp_path / "imgs")


def test_predict_uses_the_weights_preprocessing_recorded_in_the_checkpoint(tmp_path):
    prep, weights, root = _weights_with_preprocessing(tmp_path)
    result = reslab.train(
        model="resnet20",
        pretrained=str(weights),
        data="folder",
        data_dir=str(root),
        batch_size=4,
        device="cpu",
        epochs=1,
        out=str(tmp_path / "run"),
        progress="none",
    )
    info = load_checkpoint(result.run_dir / "last.pt")["data_info"]
    assert info["input_size"] == [3, 16, 16] and info["mean"] == [0.2, 0.3, 0.4] and info["std"] == [0.3, 0.2, 0.1]
    assert (info["resize"], info["interpolation"], info["crop_mode"]) == (20, "bicubic", "center")
    assert info["preprocessing"]["mode"] == "torch" and info["weights_preprocessing"] == prep
    image = root / "a" / "0.png"
    expected = preprocess_image(image, info)
    default = preprocess_image(
        image, {"input_size": [3, 16, 16], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    )
    assert not torch.allclose(expected, default)
    net = reslab.training.checkpoint.model_from_checkpoint(load_checkpoint(result.run_dir / "best.pt"))
    with torch.no_grad():
        probs = torch.softmax(net(expected), 1)[0]
    top = reslab.predict(result.run_dir, [image], topk=2)[0]
    assert [p for _, p in top] == pytest.approx(sorted(probs.tolist(), reverse=True))
    # eval rebuilds the same preprocessing from the checkpoint
    assert reslab.evaluate(result.run_dir, split="val").n > 0


def test_user_overrides_beat_the_weights_preprocessing(tmp_path):
    prep, weights, root = _weights_with_preprocessing(tmp_path)
    result = reslab.train(
        model="resnet20",
        pretrained=str(weights),
        data="folder",
        data_dir=str(root),
        image_size=8,
        data_args={"mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "nearest"},
        batch_size=4,
        device="cpu",
        epochs=1,
        out=str(tmp_path / "run"),
        progress="none",
    )
    info = load_checkpoint(result.run_dir / "last.pt")["data_info"]
    assert info["input_size"] == [3, 8, 8] and info["resize"] == 10  # the weights' crop fraction, 16 of 20
    assert info["mean"] == [0.5] * 3 and info["interpolation"] == "nearest"
    assert info["preprocessing"]["mode"] == "reslab"  # the user's statistics, not the weights' any more


def test_weights_of_other_classes_at_the_same_count_get_a_new_head(tmp_path):
    """A 2-class checkpoint fine-tuned on 2 other classes: the old head would start each new class from an
    old class's evidence, so it is replaced (and said); the same classes keep it."""
    first = reslab.train(
        model="resnet20",
        model_args=NARROW,
        data="folder",
        data_dir=str(_folder(tmp_path / "ab")),
        image_size=16,
        batch_size=4,
        device="cpu",
        epochs=1,
        out=str(tmp_path / "run1"),
        progress="none",
    )
    source = load_checkpoint(first.run_dir / "last.pt")
    other = tmp_path / "cd"
    for old, new in (("a", "c"), ("b", "d")):
        (other / new).mkdir(parents=True)
        for f in (tmp_path / "ab" / old).iterdir():
            (other / new / f.name).write_bytes(f.read_bytes())
    kw = dict(
        model="resnet20",
        pretrained=str(first.run_dir / "last.pt"),
        data="folder",
        image_size=16,
        batch_size=4,
        device="cpu",
        epochs=1,
        lr=1e-12,
        progress="none",
    )
    moved = reslab.train(data_dir=str(other), out=str(tmp_path / "run2"), **kw)
    assert "new classifier: the weights' classes (a, b) are not the data's" in (moved.run_dir / "train.log").read_text()
    old_head = source["model"]["fc.weight"]  # Adam at lr 1e-12 moves nothing visibly: the head is what was built
    assert not torch.allclose(load_checkpoint(moved.run_dir / "last.pt")["model"]["fc.weight"], old_head, atol=1e-3)
    same = reslab.train(data_dir=str(tmp_path / "ab"), out=str(tmp_path / "run3"), **kw)
    assert "new classifier" not in (same.run_dir / "train.log").read_text()
    assert torch.allclose(load_checkpoint(same.run_dir / "last.pt")["model"]["fc.weight"], old_head, atol=1e-6)
