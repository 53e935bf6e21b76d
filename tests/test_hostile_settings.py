"""Hostile settings, names, folders and text: each ends in one line and the right exit status before any
run, or in output that shows the text safely (terminal under any locale, Markdown, HTML, CSV, plots).

Runs use the toy tasks on the smoke profile (`--tasks-from tests.toy_tasks`); records are hand-made.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pandas as pd
import pytest

from suite import cli
from suite.reporting import plots, report, terminal
from suite.results import safetext
from suite.running import benchmark
from suite.taskapi import data, registry, textvalues, variants
from suite.running.config import SuiteOptions
from suite.errors import ConfigError, DlbenchError
from suite.taskapi.spec import TaskOption
from tests.helpers import make_record, write_all

ROOT = Path(__file__).resolve().parent.parent
TOYS = ["--tasks-from", "tests.toy_tasks", "--tasks", "toy_linear", "--device", "cpu", "--profile", "smoke"]
SURROGATE, RLO, EMOJI = "\ud800", "\u202e", "\U0001F600"


def one_line(err: str, *words: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def run_all(tmp_path: Path, *args: str) -> int:
    return cli.main_run_all([*TOYS, "--results", str(tmp_path / "results"), *args])


def no_records(tmp_path: Path) -> bool:
    return not list((tmp_path / "results").rglob("*.json"))


def subprocess_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **extra}


# -- values that reach no trainer, or no sensible run ----------------------------------------------------
@pytest.mark.parametrize("setting, words", [
    ("recipe.lr=nan", ("recipe.lr='nan'", "finite")),
    ("recipe.lr=inf", ("recipe.lr='inf'", "finite")),
    ("recipe.lr=-inf", ("recipe.lr='-inf'", "finite")),
    ("recipe.weight_decay=nan", ("recipe.weight_decay='nan'", "finite")),
    ("recipe.weight_decay=Infinity", ("finite",)),
    ("data.fraction=nan", ("data.fraction='nan'",)),
    ("recipe.batch_size=1e3", ("recipe.batch_size='1e3'", "wants an int")),
])
def test_non_finite_or_mistyped_recipe_values_stop_before_any_run(tmp_path, capsys, setting, words):
    assert run_all(tmp_path, "--set", setting) == 2
    one_line(capsys.readouterr().err, *words)
    assert no_records(tmp_path)


def test_a_non_finite_model_keyword_is_refused_for_a_real_model():
    from tasks.image_classification import ImageClassification

    for text in ("nan", "inf", "-Infinity"):
        with pytest.raises(ConfigError, match="must be a finite number"):
            ImageClassification.spec_for("smoke", "mlp", 0, {}, {"model.dropout": text})


def test_a_fraction_leaving_less_than_one_batch_stops_before_any_run(tmp_path, capsys):
    assert run_all(tmp_path, "--set", "data.fraction=1e-9") == 2  # the split is loaded and measured first
    line = one_line(capsys.readouterr().err, "data.fraction=1e-09", "leaves 1 of the 256 training samples",
                    "use at least 0.125")
    assert line.startswith("error: ")
    assert no_records(tmp_path)


def test_a_batch_larger_than_the_training_split_stops_before_any_run(tmp_path, capsys):
    assert run_all(tmp_path, "--set", "recipe.batch_size=100000000000") == 2
    assert one_line(capsys.readouterr().err) == ("error: recipe.batch_size=100000000000: is larger than the training "
                                                 "split of toy_linear/smoke (256 samples): use at most 256")
    assert no_records(tmp_path)


def test_a_sweep_point_with_a_batch_larger_than_the_split_stops_the_sweep_before_its_first_run(tmp_path, capsys):
    base = ["--tasks-from", "tests.toy_tasks", "--model", "linear", "--profile", "smoke", "--device", "cpu",
            "--results", str(tmp_path / "results")]
    assert cli.main(["sweep", "toy_linear", "--vary", "recipe.batch_size=16,100000", *base]) == 2
    one_line(capsys.readouterr().err, "recipe.batch_size=100000", "use at most 256")
    assert no_records(tmp_path)


def test_a_batch_the_split_holds_still_runs(tmp_path):
    assert run_all(tmp_path, "--set", "recipe.batch_size=256") == 0
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    assert record["status"] == "ok" and record["config"]["recipe"]["batch_size"] == 256


def test_rl_recipe_keys_its_trainer_never_reads_are_refused_by_run_and_sweep(tmp_path, capsys):
    base = ["--profile", "smoke", "--device", "cpu", "--results", str(tmp_path / "results")]
    assert cli.main(["sweep", "atari_rl", "--vary", "recipe.lr=1e-4,1e-3", *base]) == 2
    one_line(capsys.readouterr().err, "recipe.lr", "atari_rl/ppo_cnn", "recipe.algo.lr")
    assert cli.main_run_all(["--tasks", "atari_rl", "--models", "dqn_cnn", "--set", "recipe.batch_size=64",
                             *base]) == 2
    one_line(capsys.readouterr().err, "atari_rl/dqn_cnn", "recipe.algo.batch_size")
    assert no_records(tmp_path)


@pytest.mark.parametrize("args, words", [
    (["--profile", "quick", "--max-steps", "10"],
     ("error: --max-steps=10: smaller than one PPO rollout (num_envs 64 x num_steps 32) = 2048 env steps of "
      "atari_rl/ppo_cnn (quick): use --max-steps 2048 or more",)),
    (["--profile", "quick", "--max-steps", "511", "--set", "recipe.algo.num_steps=8"],  # the recipe --set makes
     ("--max-steps=511", "(num_envs 64 x num_steps 8) = 512 env steps", "use --max-steps 512 or more")),
    (["--profile", "smoke", "--set", "recipe.algo.num_steps=1024"],  # the profile's own budget
     ("atari_rl smoke budget.max_env_steps=2048", "= 4096 env steps", "use --max-steps 4096 or more")),
    (["--profile", "quick", "--models", "dqn_cnn", "--max-steps", "5000"],
     ("--max-steps=5000", "learning_starts 5000 + one DQN update", "use --max-steps 5004 or more")),
])
def test_an_rl_budget_below_the_first_update_stops_before_any_run(tmp_path, capsys, args, words):
    results = tmp_path / "results"
    assert cli.main_run_all(["--tasks", "atari_rl", "--device", "cpu", "--results", str(results), *args]) == 2
    one_line(capsys.readouterr().err, *words)
    assert not results.exists()  # refused at planning: no environment made, no record, no folder


def test_a_sweep_point_whose_rollout_outgrows_the_budget_stops_the_sweep_before_its_first_run(tmp_path, capsys):
    results = tmp_path / "results"
    assert cli.main(["sweep", "atari_rl", "--vary", "recipe.algo.num_steps=8,1024", "--max-steps", "4096",
                     "--profile", "quick", "--device", "cpu", "--results", str(results)]) == 2
    one_line(capsys.readouterr().err, "--max-steps=4096", "num_steps 1024) = 65536 env steps")
    assert not results.exists()


def test_a_budget_of_exactly_one_rollout_is_planned():
    opts = SuiteOptions(profile="quick", tasks=["atari_rl"], device="cpu", max_steps=2048)
    runs, _ = benchmark.plan(opts)
    assert [(run.task.name, run.model, run.skip) for run in runs] == [("atari_rl", "ppo_cnn", None)]


def test_a_model_keyword_is_checked_against_the_encoder_that_receives_it():
    from tasks.atari_rl import AtariRL

    assert AtariRL.spec_for("smoke", "ppo_cnn", 0, {}, {"model.conv": "8"}).recipe.model_kwargs == {"conv": 8}
    with pytest.raises(ConfigError, match="not a key of atari_rl/ppo_cnn; valid: model.hidden, recipe.algo.lr"):
        AtariRL.spec_for("full", "ppo_cnn", 0, {}, {"model.conv": "8"})


def test_true_false_and_none_are_spelled_alike_everywhere():
    flag = TaskOption("flag", bool, False, "a flag")
    for yes, no in (("true", "false"), ("Yes", "No"), ("ON", "off"), ("1", "0")):
        assert flag.parse(yes) is True and flag.parse(no) is False
        assert textvalues.parse_as(yes, bool, "x") is True and textvalues.parse_as(no, bool, "x") is False
    for yes in ("true", "Yes", "ON"):
        assert variants.parse_value(yes) is True
    assert variants.parse_value("none") is None and variants.parse_value("1") == 1
    with pytest.raises(ConfigError, match="task.width='nan': must be a finite number"):
        TaskOption("width", float, 1.0, "w").parse("nan")


# -- plans too large to start by accident -----------------------------------------------------------------
def test_a_million_seeds_stops_at_once_with_the_plans_size_and_estimate(tmp_path, capsys):
    assert run_all(tmp_path, "--seeds", "1000000") == 2
    line = one_line(capsys.readouterr().err, "1,000,000 runs", "--yes", "200 runs or 100 seeds")
    assert "1 task/model pair x 1,000,000 seeds" in line and "no time estimate" in line  # toys declare none


def test_a_huge_sweep_stops_before_its_grid_is_built(tmp_path, capsys):
    values = ",".join(str(i) for i in range(1, 101))
    args = ["sweep", "image_classification", "--model", "mlp", "--profile", "smoke", "--device", "cpu",
            "--vary", f"model.depth={values}", "--vary", f"model.width={values}", "--results", str(tmp_path / "r")]
    assert cli.main(args) == 2
    one_line(capsys.readouterr().err, "10,000 runs", "10,000 variants", "by the profiles' expected times", "--yes")


def test_yes_starts_a_large_plan_and_prints_its_size(tmp_path, capsys):
    from tests.toy_tasks import ToyLinear

    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, seeds=101, yes=True)
    benchmark.check_size([(ToyLinear, "linear")], 1, opts)
    assert capsys.readouterr().out.startswith("plan: the plan has 101 runs")
    with pytest.raises(DlbenchError, match="starts only with --yes"):
        benchmark.check_size([(ToyLinear, "linear")], 1, SuiteOptions(results=tmp_path, seeds=101))


# -- names and plug-ins ----------------------------------------------------------------------------------
def write_module(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.py").write_text(text)


def test_a_plug_in_task_named_like_a_path_is_refused_at_registration(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "escape_plugin", "from suite.taskapi.registry import register_task\n"
                 "from tests.toy_tasks import ToyLinear\n\n@register_task\nclass Escape(ToyLinear):\n"
                 "    name = '../../escaped_task'\n")
    code = cli.main_run_all(["--tasks-from", "escape_plugin", "--device", "cpu", "--profile", "smoke",
                             "--results", str(tmp_path / "deep" / "er" / "results")])
    assert code == 2
    one_line(capsys.readouterr().err, "'../../escaped_task'", "letters, digits and underscores")
    assert not list(tmp_path.rglob("*.json"))


def test_a_model_named_like_a_path_is_refused_at_registration():
    from tests.toy_tasks import ToyLinear

    class Bad(ToyLinear):
        name = "bad_models"
        models = {"a/b": ToyLinear.models["linear"]}
        default_model = "a/b"

    with pytest.raises(DlbenchError, match="model name of task 'bad_models' 'a/b'"):
        registry.register_task(Bad)


def test_a_plug_in_that_exits_on_import_is_named_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "exiting_plugin", "import sys\nsys.exit(3)\n")
    assert cli.main_run_all(["--tasks-from", "exiting_plugin", "--device", "cpu", "--profile", "smoke",
                             "--results", str(tmp_path / "results")]) == 2
    one_line(capsys.readouterr().err, "'exiting_plugin'", "sys.exit(3)")


def test_an_entry_point_that_exits_or_raises_on_import_becomes_an_unavailable_task(monkeypatch):
    class EntryPoint:
        def __init__(self, value, error):
            self.value, self.error = value, error

        def load(self):
            raise self.error

    points = [EntryPoint("exits_plugin", SystemExit(3)), EntryPoint("raises_plugin", RuntimeError("boom\nmore"))]
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: points)
    registry.reset()
    registry.load_tasks()
    assert registry.UNAVAILABLE == {"exits_plugin": "called sys.exit(3) on import",
                                    "raises_plugin": "RuntimeError on import: boom"}


# -- folders ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["same", "results_inside", "data_inside"])
def test_results_and_data_folders_that_overlap_are_refused_before_any_run(tmp_path, capsys, where):
    folders = {"same": (tmp_path / "x", tmp_path / "x"), "results_inside": (tmp_path / "d" / "r", tmp_path / "d"),
               "data_inside": (tmp_path / "r", tmp_path / "r" / "d")}[where]
    code = cli.main_run_all([*TOYS, "--results", str(folders[0]), "--data-dir", str(folders[1])])
    assert code == 2
    one_line(capsys.readouterr().err, "overlap", "--data-dir")
    assert not list(tmp_path.rglob("*.json"))


def test_an_unreadable_data_folder_stops_the_suite_before_any_run(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    real = os.listdir

    def listdir(path="."):  # as root, chmod would not stop the read
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(data.os, "listdir", listdir)
    assert cli.main_run_all([*TOYS, "--results", str(tmp_path / "results"), "--data-dir", str(folder)]) == 2
    one_line(capsys.readouterr().err, f"data folder {folder}", "Permission denied", "--data-dir")
    assert no_records(tmp_path)


def test_an_unusable_home_stops_the_suite_before_any_run(tmp_path):
    home = tmp_path / "a_file"
    home.write_text("HOME is a file here, so nothing can be made under it (even as root)")
    env = subprocess_env(HOME=str(home))
    env.pop("DLBENCH_DATA")
    done = subprocess.run([sys.executable, "run_all.py", *TOYS, "--results", str(tmp_path / "results")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    one_line(done.stderr, f"data folder {home}/.cache/dlbench", "HOME")
    assert not (tmp_path / "results" / "runs").exists()


def test_a_relative_data_folder_is_stored_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLBENCH_DATA", "rel/data")
    assert data.data_dir() == tmp_path.resolve() / "rel" / "data"
    assert cli.main_run_all([*TOYS, "--results", str(tmp_path / "results")]) == 0
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    assert record["data_dir"] == str(tmp_path.resolve() / "rel" / "data")


# -- text from records, in every output -------------------------------------------------------------------
HOSTILE_MODEL = f"m{SURROGATE}<script>alert(1)</script>|<img src=x onerror=alert(2)>&amp;"
HOSTILE_LABEL = f"lab {RLO}exe.txt {EMOJI} $x^2$ \\mathdefault"


def hostile_folder(tmp_path: Path) -> Path:
    recs = [make_record(seed=s, model=HOSTILE_MODEL, hardware=HOSTILE_LABEL, ttt=1.0 + 20 * s, run_id=f"h{s}")
            for s in range(3)]
    recs += [make_record(seed=s, model="plain", hardware="B\u00e9", ttt=10.0 + 20 * s, run_id=f"p{s}")
             for s in range(3)]
    return write_all(tmp_path / "results", recs)


@pytest.mark.parametrize("env", [{"LC_ALL": "C", "PYTHONUTF8": "0"}, {"PYTHONIOENCODING": "ascii"}, {}],
                         ids=["C-locale", "ascii-io", "utf8"])
@pytest.mark.parametrize("command", [["compare", "--format", "text"], ["compare", "--format", "md"],
                                     ["compare", "--format", "csv"], ["report"], ["check"]])
def test_hostile_text_in_records_never_crashes_a_reader_under_any_locale(tmp_path, env, command):
    folder = hostile_folder(tmp_path)
    done = subprocess.run([sys.executable, "-m", "suite.cli", command[0], str(folder), *command[1:]], cwd=ROOT,
                          env=subprocess_env(**env), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-2000:]
    out = done.stdout.decode("utf-8")  # decodable whatever the locale: escapes where ASCII is all there is
    assert b"Traceback" not in done.stderr and RLO not in out and SURROGATE not in out
    if env:
        assert out.isascii()


def test_the_markdown_report_holds_no_raw_html_and_each_row_keeps_its_cells(tmp_path):
    folder = hostile_folder(tmp_path)
    files, _ = report.write_report([folder], folder / "report.html")
    md = files[1].read_text(encoding="utf-8")
    assert "<script" not in md and "<img" not in md and "&amp;amp;" in md and RLO not in md
    for table in re.findall(r"(?:^\|.*\|$\n?)+", md, flags=re.M):
        cells = [len(re.split(r"(?<!\\)\|", row)) for row in table.strip().splitlines()]
        assert len(set(cells)) == 1, table
    html = files[0].read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html and RLO not in html
    for csv in files[2:]:
        text = csv.read_text(encoding="utf-8")
        assert RLO not in text and SURROGATE not in text


def test_safetext_keeps_what_it_can_and_shows_what_it_replaces():
    assert safetext.plain(f"a{RLO}b\nc{SURROGATE}") == "a\ufffdb c\ufffd"
    assert safetext.markdown("a|b<c>&\\") == "a\\|b&lt;c&gt;&amp;\\\\"
    assert safetext.plot_label("$x$ 5$") == r"\$x\$ 5\$"
    assert safetext.encodable(f"é{EMOJI}", "ascii") == "\\xe9\\U0001f600"
    assert safetext.without_surrogates({f"k{SURROGATE}": [SURROGATE, 1]}) == {"k\ufffd": ["\ufffd", 1]}


def test_terminal_streams_write_any_text_under_an_ascii_encoding():
    code = ("import sys; sys.path.insert(0, '.'); from suite.reporting import terminal; terminal.safe_streams(); "
            f"print({HOSTILE_LABEL + SURROGATE!r}); print('\\u00e9', file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(PYTHONIOENCODING="ascii"),
                          capture_output=True, timeout=60)
    assert done.returncode == 0 and done.stdout.isascii() and b"\\U0001f600" in done.stdout, done.stderr
    assert done.stderr.strip() == b"\\xe9"


# -- plots: record text drawn literally, matplotlib's own math still rendered ---------------------------------
def drawn(label) -> str:
    """What matplotlib shows for a text artist: its math rendered, or its text with `\\$` shown as `$`."""
    from matplotlib import cbook

    text = label.get_text()
    if label.get_parse_math() and cbook.is_math_text(text):
        return "<math>"
    return text.replace(r"\$", "$")


def tick_labels(fig) -> list[tuple]:
    """(axis, [visible tick label artists in view]) for every axis of `fig` (drawn first)."""
    fig.canvas.draw()
    out = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for minor in (False, True):
                locs, labels = axis.get_ticklocs(minor=minor), axis.get_ticklabels(minor=minor)
                shown = [lab for loc, lab in zip(locs, labels)
                         if low - 1e-9 <= loc <= high + 1e-9 and lab.get_visible() and lab.get_text()]
                out.append((axis, shown))
    return out


@pytest.fixture
def figures(monkeypatch):
    """Every figure the report draws, as it was when its PNG was made (a copy: the report draws its next
    plot of the same size on the same figure)."""
    import pickle

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    kept, make_png = [], plots._png

    def keep(fig):
        png = make_png(fig)
        copy = pickle.loads(pickle.dumps(fig))
        FigureCanvasAgg(copy)
        kept.append(copy)
        return png

    monkeypatch.setattr(plots, "_png", keep)
    return kept


def check_figure(fig, wanted: set[str]) -> set[str]:
    """No raw math in any tick label, none overlapping another; return the record texts drawn."""
    seen = set()
    for axis, labels in tick_labels(fig):
        for label in labels:
            text = drawn(label)  # a number's label is rendered math or plain digits, never raw TeX
            assert text in wanted or ("mathdefault" not in text and not re.fullmatch(r"\$.*\$", text)), text
            seen.add(text)
        boxes = [label.get_window_extent() for label in labels]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert not (a.x0 < b.x1 - 0.5 and b.x0 < a.x1 - 0.5 and a.y0 < b.y1 - 0.5 and b.y0 < a.y1 - 0.5), \
                    f"tick labels overlap: {[lab.get_text() for lab in labels]}"
    for ax in fig.axes:
        legend = ax.get_legend()
        texts = [ax.title, ax.xaxis.label, ax.yaxis.label] + (legend.get_texts() if legend else [])
        seen |= {drawn(t) for t in texts}
    return seen & wanted


def test_every_tick_label_of_the_reports_figures_is_rendered_and_apart(tmp_path, figures):
    long_name = "a_model_name_" + "x" * 90  # long names squeeze the axes they sit beside
    recs = [make_record(seed=s, model=model, hardware=hardware, ttt=1.0 + 20 * s + 7 * i, run_id=f"r{i}{s}")
            for i, (model, hardware) in enumerate([("m$1$", f"{EMOJI} $x$ \\mathdefault"), (long_name, "B")])
            for s in range(3)]  # times 1 to 150 s: log time axes
    folder = write_all(tmp_path / "results", recs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report.write_report([folder], folder / "report.html")
    assert not [w for w in caught if "Glyph" in str(w.message)], "one warning per missing emoji glyph"
    assert len(figures) >= 3
    names = {f"m$1$ @ {EMOJI} $x$ \\mathdefault", f"{long_name} @ B"[:plots.NAME_CHARS - 1] + "\u2026"}
    wanted = names | {f"{name} (median)" for name in names}
    drawn_texts = set()
    for fig in figures:
        drawn_texts |= check_figure(fig, wanted)
    assert drawn_texts == wanted, "names with $ and \\ are drawn as written, long ones cut"
    assert any(ax.get_xscale() == "log" for fig in figures for ax in fig.axes)


def test_a_study_plot_on_a_log_axis_shows_its_values_as_written(figures):
    values = ["0.0001", "0.001", "0.01", "0.1"]
    part = pd.DataFrame({"recipe.lr": values, "quality": [0.5, 0.6, 0.7, 0.8], "time_to_target_s": [9.0, 5, 3, 2]})
    for measure in ("quality", "time_to_target_s"):
        part[f"{measure}_lo"], part[f"{measure}_hi"] = part[measure] * 0.9, part[measure] * 1.1
    plots.study([("mlp $a$", part)], "recipe.lr", "test/accuracy", 0.75, "toy v1 (smoke, digits)")
    (fig,) = figures
    assert all(ax.get_xscale() == "log" for ax in fig.axes)
    shown = check_figure(fig, set(values) | {"mlp $a$"})
    assert shown == set(values) | {"mlp $a$"}


def test_terminal_tables_keep_their_columns_aligned_with_escaped_text(monkeypatch):
    table = pd.DataFrame({"hardware": ["B\u00e9", f"x{RLO}y\nz"], "time": ["1", "2"]})
    monkeypatch.setattr(terminal, "sys", types.SimpleNamespace(stdout=types.SimpleNamespace(encoding="ascii")))
    lines = terminal.render(table).splitlines()
    assert lines[2].startswith("B\\xe9 ") and lines[3].startswith("x\\ufffdy z")
    assert len({line.index(cell) for line, cell in zip(lines[2:], ["1", "2"])}) == 1


def test_a_hardware_label_with_a_byte_the_locale_cannot_decode_runs_and_reads_back(tmp_path):
    label = os.fsdecode(b"lab\xff\nnext")  # what argv holds for such a byte: a lone surrogate
    assert cli.main_run_all([*TOYS, "--results", str(tmp_path / "results"), "--hardware-label", label]) == 0
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    assert record["hardware"]["label"] == "lab\ufffd next"
