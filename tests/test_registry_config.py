"""Registry errors and configuration validation: one-line messages naming the fix."""
from __future__ import annotations

import argparse

import pytest

from suite import registry
from suite.config import SuiteOptions, add_arguments, from_namespace
from suite.errors import ConfigError, DlbenchError, UnknownNameError
from suite.task import Budget, ProfileSpec, Recipe, Target, Task


def test_unknown_task_lists_close_matches_and_all_names():
    with pytest.raises(UnknownNameError) as info:
        registry.get_task("image_clasification")
    message = str(info.value)
    assert "did you mean image_classification" in message
    assert "known:" in message and "image_classification" in message
    assert "\n" not in message


def test_unknown_model_and_profile_name_the_task():
    cls = registry.get_task("image_classification")
    with pytest.raises(UnknownNameError, match=r"unknown model of task 'image_classification' 'cnnn'.*did you mean cnn"):
        cls.spec_for("smoke", "cnnn")
    with pytest.raises(UnknownNameError, match="unknown profile .* 'quik'"):
        cls.spec_for("quik", "cnn")


def _toy_task(name: str) -> type[Task]:
    return type("Toy", (Task,), {
        "name": name, "models": {"m": lambda: None}, "default_model": "m",
        "profiles": {"smoke": ProfileSpec("d", Target("test/acc", 1.0, True, "x"), Budget(max_steps=1), {})},
    })


def test_duplicate_task_name_is_an_error_at_registration():
    first = registry.register_task(_toy_task("toy_duplicate"))
    try:
        with pytest.raises(registry.DuplicateTaskError, match="registered twice"):
            registry.register_task(_toy_task("toy_duplicate"))
    finally:
        registry.TASKS.pop(first.name)


def test_default_model_must_exist():
    cls = _toy_task("toy_bad_default")
    cls.default_model = "nope"
    with pytest.raises(DlbenchError, match="default_model 'nope'"):
        registry.register_task(cls)


@pytest.mark.parametrize("kwargs,field", [
    ({"seeds": 0}, "seeds"),
    ({"profile": "fast"}, "profile"),
    ({"device": "gpu"}, "device"),
    ({"precision": "fp8"}, "precision"),
    ({"max_time_s": -1.0}, "max_time_s"),
    ({"max_steps": 0}, "max_steps"),
    ({"models": " "}, "models"),
])
def test_options_validation_names_field_value_and_rule(kwargs, field):
    with pytest.raises(ConfigError) as info:
        SuiteOptions(**kwargs)
    assert info.value.field == field
    message = str(info.value)
    assert message.startswith(f"{field}=") and "\n" not in message


def test_results_folder_that_is_a_file_is_rejected(tmp_path):
    file = tmp_path / "results"
    file.write_text("not a folder")
    with pytest.raises(ConfigError, match="is a file"):
        SuiteOptions(results=file)


@pytest.mark.parametrize("kwargs", [
    {"max_steps": 1, "max_epochs": 1.0},
    {},
    {"max_steps": 0},
    {"max_steps": 1, "max_time_s": 0},
])
def test_budget_validation(kwargs):
    with pytest.raises(ConfigError):
        Budget(**kwargs)


@pytest.mark.parametrize("kwargs", [{"optimizer": "adam"}, {"schedule": "step"}, {"lr": 0.0},
                                    {"batch_size": 0}, {"warmup_frac": 1.0}])
def test_recipe_validation(kwargs):
    with pytest.raises(ConfigError):
        Recipe(**kwargs)


def test_target_direction():
    higher = Target("test/accuracy", 0.9, True, "s")
    lower = Target("test/wer", 0.3, False, "s")
    assert higher.met({"test/accuracy": 0.9}) and not higher.met({"test/accuracy": 0.89})
    assert lower.met({"test/wer": 0.25}) and not lower.met({"test/wer": 0.31})
    assert not higher.met({}) and not higher.met({"test/accuracy": float("nan")})


def test_command_line_flags_come_from_the_dataclass():
    parser = argparse.ArgumentParser()
    add_arguments(parser, SuiteOptions)
    args = parser.parse_args(["--profile", "smoke", "--tasks", "a,b", "--seeds", "3", "--resume",
                              "--hardware-label", "box"])
    opts = from_namespace(SuiteOptions, args)
    assert (opts.profile, opts.tasks, opts.seeds, opts.resume, opts.hardware_label) == \
        ("smoke", ["a", "b"], 3, True, "box")
    with pytest.raises(SystemExit):
        parser.parse_args(["--seeds", "many"])


def test_pretrained_option_reaches_tasks_and_the_config_hash(tmp_path, monkeypatch):
    from suite.config import PRETRAINED_ENV
    from suite.runner import resolved_config
    from tests.toy_tasks import ToyLinear

    monkeypatch.setenv(PRETRAINED_ENV, "")  # restored after the test, whatever the options set
    spec = ToyLinear.spec_for("smoke", "linear")
    plain = resolved_config(spec, SuiteOptions(results=tmp_path), "cpu", "fp32", 1)
    SuiteOptions(results=tmp_path, pretrained="some/encoder")
    import os

    assert os.environ[PRETRAINED_ENV] == "some/encoder"
    chosen = resolved_config(spec, SuiteOptions(results=tmp_path), "cpu", "fp32", 1)
    assert chosen["pretrained"] == "some/encoder" and not plain["pretrained"]
