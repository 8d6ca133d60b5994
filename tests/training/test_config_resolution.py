"""How a configuration is resolved: defaults, shipped recipes by name, the one merge rule of the command
line and of reslab.train, milestone fractions, ~ in paths, and the checks of data_args / model_args."""

from __future__ import annotations

import pytest
import yaml

from reslab.errors import ConfigError
from reslab.models.registry import check_overrides
from reslab.training.config import (
    SHIPPED_CONFIG_DIR,
    TrainConfig,
    check_data_args,
    load_config_file,
    merge_overrides,
    resolve_config,
    shipped_configs,
)
from reslab.training.optim import build_schedule

#: keys whose default became the short modern recipe's: a paper's recipe must state them
CHANGED_DEFAULTS = ("lr", "nesterov", "schedule", "decay_norm_and_bias", "label_smoothing", "ema")


def test_defaults_are_the_best_short_recipe():
    assert resolve_config().to_dict() == resolve_config("resnet_cifar10_fast").to_dict()
    c = TrainConfig().validate()
    assert (c.optimizer, c.lr, c.nesterov, c.schedule, c.onecycle_pct, c.label_smoothing) == (
        "sgd",
        0.2,
        True,
        "onecycle",
        0.25,
        0.1,
    )
    assert (c.weight_decay, c.decay_norm_and_bias, c.ema, c.ema_decay, c.batch_size, c.epochs) == (
        5e-4,
        False,
        True,
        0.999,
        128,
        30,
    )


def test_nesterov_default_follows_the_optimizer():
    assert TrainConfig(optimizer="adam").validate().nesterov is False  # not an error: the user asked nothing
    assert TrainConfig(momentum=0.0).validate().nesterov is False
    with pytest.raises(ConfigError, match="nesterov applies to optimizer 'sgd' only"):
        TrainConfig(optimizer="adamw", nesterov=True).validate()


@pytest.mark.parametrize("name", [n for n in shipped_configs() if n != "resnet_cifar10_fast"])
def test_other_recipes_state_every_key_whose_default_changed(name):
    values = load_config_file(name)
    missing = [k for k in CHANGED_DEFAULTS if k not in values]
    assert not missing, f"{name} relies on reslab's defaults for {missing}; state them"


def test_shipped_recipe_by_name_and_a_path_wins(tmp_path, monkeypatch):
    by_name = resolve_config("resnet_cifar10")
    assert by_name == resolve_config(SHIPPED_CONFIG_DIR / "resnet_cifar10.yaml")
    assert resolve_config("resnet_cifar10.yaml") == by_name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet_cifar10").write_text("epochs: 3\n")  # a file of that name in the working directory
    assert resolve_config("resnet_cifar10").epochs == 3
    with pytest.raises(ConfigError, match=r"configuration file resnet_cifar11 not found .*shipped: .*resnet_cifar10,"):
        resolve_config("resnet_cifar11")


def test_paper_recipe_milestones_follow_epochs():
    c = resolve_config("resnet_cifar10")
    assert c.milestone_epochs() == [82, 123]
    short = resolve_config("resnet_cifar10", epochs=1)  # was: "milestones ... got [82.0, 123.0]"
    assert short.milestone_epochs() == [0.5, 0.75]
    schedule = build_schedule(short, steps_per_epoch=8)
    assert schedule.milestones == [4, 6]
    explicit = TrainConfig(epochs=164, schedule="multistep", milestones=[82, 123]).validate()
    assert build_schedule(explicit, 391).milestones == build_schedule(c, 391).milestones == [82 * 391, 123 * 391]


@pytest.mark.parametrize(
    "values,match",
    [
        ({"milestones": [2, 3], "milestone_fractions": [0.5]}, "not both"),
        ({"milestone_fractions": [0.75, 0.5]}, "increasing fractions"),
        ({"milestone_fractions": [0.5, 1.5]}, r"in \(0, 1\]"),
        ({"milestone_fractions": []}, "list of fractions"),
        ({"milestones": [82, 123]}, "milestone_fractions .* follow --epochs"),
    ],
)
def test_bad_milestones_are_named(values, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(None, epochs=4, schedule="multistep", **values)


def test_milestones_of_either_form_replace_the_recipes():
    c = resolve_config("resnet_cifar10", milestones=[100, 150])
    assert (c.milestones, c.milestone_fractions, c.milestone_epochs()) == ([100, 150], None, [100, 150])
    c = resolve_config({"schedule": "multistep", "milestones": [3, 6], "epochs": 8}, milestone_fractions=[0.25])
    assert c.milestone_epochs() == [2.0]


def test_tilde_is_expanded_in_data_dir_and_out(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    c = resolve_config(None, data_dir="~/data", out="~/runs/a")
    assert (c.data_dir, c.out) == (str(tmp_path / "data"), str(tmp_path / "runs" / "a"))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data_dir: ~/cifar\n")
    assert resolve_config(recipe).data_dir == str(tmp_path / "cifar")


def test_overrides_merge_into_the_recipes_model_and_data_args(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump({"model_args": {"widths": [4, 8, 8], "shortcut": "B"}, "data_args": {"limit": 100}, "lr": 0.3})
    )
    c = resolve_config(recipe, model_args={"widths": [8, 8, 8]}, data_args={"strict": True}, lr=0.1)
    assert c.model_args == {"widths": [8, 8, 8], "shortcut": "B"}  # was: the recipe's shortcut dropped
    assert c.data_args == {"limit": 100, "strict": True}
    assert c.lr == 0.1
    assert merge_overrides({"model_args": {"a": 1}}, {"model_args": {"b": 2}}) == {"model_args": {"a": 1, "b": 2}}


def test_recipe_notes_that_need_a_key_are_said_only_where_it_is_set(tmp_path):
    from reslab.training.config import resolve_config

    path = tmp_path / "r.yaml"
    path.write_text(
        "epochs: 2\nema: true\nnotes:\n  - always\n  - note: about the EMA\n    needs: [ema]\n"
        "  - note: about the weights\n    needs: [pretrained, ema]\n"
    )
    notes: list[str] = []
    resolve_config(str(path), notes=notes)
    assert notes == ["recipe r: always", "recipe r: about the EMA"]
    notes.clear()
    resolve_config(str(path), notes=notes, ema=False)
    assert notes == ["recipe r: always"]
    for bad, match in (
        (
            "notes: [5]",
            r"r.yaml: each of notes must be a line \(a string\) or \{note: LINE, needs: \[KEY, ...\]\}, got 5",
        ),
        ("notes: [{note: x, needs: [emma]}]", r"unknown configuration key 'emma'.*did you mean ema"),
        ("notes: [{note: x, when: [ema]}]", r"each of notes must be a line"),
    ):
        path.write_text(bad + "\n")
        with pytest.raises(ConfigError, match=match):
            load_config_file(path)


def test_a_non_utf8_config_file_is_named(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# r\xe9glages\nepochs: 2\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml is not UTF-8 text \(byte 0xe9"):
        load_config_file(path)


@pytest.mark.parametrize(
    "data_args,match",
    [
        ({"foo": 1}, r"unknown data_args key 'foo' .*accepted: .*limit.*strict"),
        ({"batch_size": 4}, "'batch_size' .* configuration key of its own: use --batch-size"),
        ({"image_size": 8}, "use --image-size"),
        ({"name": "mnist"}, "use --data"),
        ({"strict": "maybe"}, "'strict' .* must be true or false, got 'maybe'"),
        ({"pad_to_32": "yes"}, "must be true or false"),
        ({"limit": "ten"}, "'limit' .* must be a whole number"),
        ({"image_size_reason": "x"}, "'image_size_reason' .* cannot be given here: reslab sets it itself"),
    ],
)
def test_bad_data_args_are_named(data_args, match):
    with pytest.raises(ConfigError, match=match):
        check_data_args(data_args)
    with pytest.raises(ConfigError, match=match):  # the same from a recipe or reslab.train
        resolve_config(None, data_args=data_args)


def test_internal_build_data_keywords_are_not_offered():
    from reslab.training.config import data_arg_types

    assert not {"image_size_reason", "split_for_eval", "name"} & set(data_arg_types())


def test_good_data_args_pass():
    check_data_args({"limit": 10, "strict": True, "flip": None, "num_classes": 4, "cifar100_labels": "coarse"})


@pytest.mark.parametrize(
    "model_args,match",
    [
        ({"num_classes": 5}, "'num_classes' .* cannot be overridden: it is set by the data set's class count"),
        ({"in_chans": 1}, "'in_chans' .* set by the data set's channel count"),
        ({"foo": 1}, r"resnet20: unknown model_args key 'foo' .*accepted: .*widths"),
        ({"zero_init_last": "maybe"}, "'zero_init_last' .* must be true or false, got 'maybe'"),
    ],
)
def test_bad_model_args_are_named(model_args, match):
    with pytest.raises(ConfigError, match=match):
        check_overrides("resnet20", model_args)


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({"schedule": "cosine", "gamma": 0.5}, "--gamma 0.5 applies to --schedule multistep only, but this run's "),
        ({"schedule": "constant", "milestones": [2, 3]}, "--milestones [2, 3] applies to --schedule multistep"),
        ({"schedule": "onecycle", "milestone_fractions": [0.5]}, "--milestone-fractions [0.5] applies to --schedule"),
        ({"schedule": "cosine", "onecycle_div": 10}, "--onecycle-div 10 applies to --schedule onecycle only"),
        ({"schedule": "multistep", "onecycle_pct": 0.3}, "--onecycle-pct 0.3 applies to --schedule onecycle"),
        ({"optimizer": "adam", "momentum": 0.8}, "--momentum 0.8 applies to --optimizer sgd only"),
        ({"optimizer": "adamw", "nesterov": True}, "--nesterov True applies to --optimizer sgd only"),
        ({"optimizer": "sgd", "betas": [0.8, 0.9]}, "--betas [0.8, 0.9] applies to --optimizer adam or adamw"),
        ({"ema": False, "ema_decay": 0.99}, "--ema-decay 0.99 applies to --ema only, but this run's ema is False"),
        ({"augment": False, "cutout": 8}, "--cutout 8 applies to augmentation"),
        ({"freeze": "backbone", "backbone_lr_scale": 0.1}, "--backbone-lr-scale 0.1 applies to a backbone that"),
    ],
)
def test_a_given_key_the_run_would_not_use_is_refused(given, match):
    with pytest.raises(ConfigError, match=match.replace("[", r"\[").replace("]", r"\]")):
        resolve_config(None, **given)


def test_only_values_the_user_set_are_checked(tmp_path):
    # the defaults (gamma 0.1, onecycle_div 25, momentum 0.9, ema_decay 0.999) are never refused
    c = resolve_config(None, schedule="cosine", optimizer="adam", ema=False, augment=False)
    assert (c.gamma, c.onecycle_div, c.momentum, c.ema_decay) == (0.1, 25.0, 0.9, 0.999)
    assert resolve_config(None, optimizer="adam", nesterov=False, augment=False, cutout=0).nesterov is False
    # the schedule the recipe itself chose: its gamma is refused, naming the file
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"schedule": "cosine", "gamma": 0.5}))
    with pytest.raises(ConfigError, match=rf"gamma 0.5 \(in {recipe}\) applies to --schedule multistep only"):
        resolve_config(recipe)
    # an override that changes the deciding key: the recipe's values go back to their defaults, said in the notes
    notes: list[str] = []
    c = resolve_config("resnet_cifar10", notes=notes, schedule="cosine", optimizer="adam")
    assert (c.milestone_fractions, c.schedule, c.momentum) == (None, "cosine", 0.9)
    assert any("milestone_fractions [0.5, 0.75] (from resnet_cifar10) is not used" in n for n in notes), notes


@pytest.mark.parametrize("name", shipped_configs())
def test_shipped_recipes_load_with_any_schedule_or_optimizer_given(name):
    for override in ({}, {"schedule": "cosine"}, {"schedule": "multistep"}, {"optimizer": "adam"}):
        resolve_config(name, **override)


def test_a_runs_own_config_yaml_repeats_as_a_recipe(tmp_path):
    """config.yaml states every key (the unused ones at their defaults): as a recipe it is not refused."""
    from reslab.training.config import save_config

    for given in ({}, {"schedule": "cosine", "optimizer": "adam", "ema": False}, {"schedule": "multistep"}):
        path = tmp_path / "config.yaml"
        save_config(resolve_config(None, **given), path)
        assert resolve_config(path) == resolve_config(None, **given)


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("learning_rate", "lr"), ("num_epochs", "epochs"), ("lr_schedule", "schedule"), ("epoch", "epochs")],
)
def test_unknown_keys_get_a_did_you_mean(tmp_path, key, suggestion):
    with pytest.raises(
        ConfigError, match=rf"unknown configuration key '{key}' in the overrides; did you mean {suggestion}"
    ):
        resolve_config(None, **{key: 1})
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({key: 1}))
    with pytest.raises(ConfigError, match=rf"unknown configuration key '{key}' in {recipe}; did you mean {suggestion}"):
        resolve_config(recipe)
