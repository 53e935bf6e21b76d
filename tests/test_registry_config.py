"""Registry errors and configuration validation: one-line messages naming the fix."""
from __future__ import annotations

import argparse

import pytest

from suite.taskapi import registry
from suite.running.config import FlagValueError, SuiteOptions, add_arguments, from_namespace
from suite.errors import ConfigError, DlbenchError, UnknownNameError
from suite.taskapi.spec import Budget, ProfileSpec, Recipe, Target, TaskOption
from suite.taskapi.task import RLTask, Task


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


def _toy_task(name: str, base: type = Task, **members) -> type:
    if base is Task:
        members = {"load": lambda self, split: None, "loss": lambda self, model, batch: None,
                   "evaluate": lambda self, model, source: {}, **members}
    return type("Toy", (base,), {
        "name": name, "models": {"m": lambda: None}, "default_model": "m",
        "profiles": {"smoke": ProfileSpec("d", Target("test/acc", 1.0, True, "x"), Budget(max_steps=1), {})},
        **members,
    })


def test_a_task_missing_a_contract_member_is_refused_at_registration_in_one_line():
    lacking = _toy_task("toy_lacking", base=RLTask, make_env=lambda self, evaluation: None)
    with pytest.raises(DlbenchError) as info:
        registry.register_task(lacking)
    assert str(info.value) == ("task 'toy_lacking' (abc.Toy) does not implement build_agent: "
                               "every RLTask must")
    no_loss = type("NoLoss", (Task,), {"name": "toy_no_loss", "models": {"m": None}, "default_model": "m",
                                       "load": lambda self, split: None})
    with pytest.raises(DlbenchError, match=r"does not implement evaluate, loss: every Task must$"):
        registry.register_task(no_loss)
    assert "toy_lacking" not in registry.TASKS and "toy_no_loss" not in registry.TASKS


def test_the_registry_can_be_reset_and_reloads_the_entry_points():
    builtin = dict(registry.load_tasks())
    registry.register_task(_toy_task("toy_leak"))
    registry.reset()
    assert registry.TASKS == {}
    assert registry.load_tasks() == builtin  # entry points name classes: loading again registers them again


def test_duplicate_task_name_is_an_error_at_registration():
    registry.register_task(_toy_task("toy_duplicate"))
    with pytest.raises(registry.DuplicateTaskError, match="registered twice"):
        registry.register_task(_toy_task("toy_duplicate"))


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
    # A bad value is the command's one-line error (exit 2 through the CLI's guard), naming flag and type.
    with pytest.raises(FlagValueError, match="seeds='many': wants an int"):
        parser.parse_args(["--seeds", "many"])


class ToyWithOptions(Task):
    name = "toy_options"
    models = {"m": lambda: None}
    default_model = "m"
    profiles = {"smoke": ProfileSpec("d", Target("test/acc", 1.0, True, "x"), Budget(max_steps=1), {})}
    options = (TaskOption("width", int, 8, "hidden width"), TaskOption("encoder", str, None, "encoder name"))

    def load(self, split): ...
    def loss(self, model, batch): ...
    def evaluate(self, model, source): ...


def test_set_task_option_is_parsed_and_lands_in_the_config_hash(tmp_path):
    from suite.results import records
    from suite.running.runner import resolved_config, task_options

    def config(*sets):
        opts = SuiteOptions(results=tmp_path, set=list(sets))
        spec = ToyWithOptions.spec_for("smoke", "m", 0, task_options(ToyWithOptions, opts))
        return resolved_config(spec, opts, "cpu", "fp32", 1)

    plain, wide = config(), config("task.width=16", "task.encoder=some/encoder")
    assert plain["options"] == {"width": 8, "encoder": None}
    assert wide["options"] == {"width": 16, "encoder": "some/encoder"}
    assert records.config_hash(plain) != records.config_hash(wide)
    assert config("task.width=16", "task.width=8") == plain  # the last --set of a key wins


@pytest.mark.parametrize("item,message", [
    ("task.width", "use NAMESPACE.KEY=VALUE"),
    ("width=3", "use NAMESPACE.KEY=VALUE"),
    ("gpu.width=3", "unknown namespace 'gpu': use one of task.KEY"),
])
def test_set_syntax_and_namespace_are_checked_before_any_run(item, message):
    with pytest.raises(ConfigError, match=message) as info:
        SuiteOptions(set=[item])
    assert "\n" not in str(info.value)


def test_unknown_or_bad_task_option_is_one_line_listing_the_valid_keys(tmp_path):
    from suite.running.benchmark import check_task_options

    with pytest.raises(ConfigError) as info:
        check_task_options([ToyWithOptions], SuiteOptions(results=tmp_path, set=["task.depth=3"]))
    assert str(info.value) == ("--set task.depth='3': no selected task has this option; "
                               "valid: task.encoder, task.width")
    with pytest.raises(ConfigError, match=r"task.width='wide': wants an int"):
        check_task_options([ToyWithOptions], SuiteOptions(results=tmp_path, set=["task.width=wide"]))
    with pytest.raises(ConfigError, match="not an option of task 'toy_options'; valid: task.width, task.encoder"):
        ToyWithOptions.spec_for("smoke", "m", 0, {"depth": "3"})


def test_the_removed_pretrained_flag_names_its_replacement(capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser, SuiteOptions)
    with pytest.raises(SystemExit):
        parser.parse_args(["--pretrained", "some/encoder"])
    assert "--pretrained is gone: use --set task.pretrained=NAME" in capsys.readouterr().err
    assert "--pretrained" not in parser.format_help()
