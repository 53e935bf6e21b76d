"""`--cuda-graphs` (suite.training.graphs): the refusals, the record and cell key, and the capture
bookkeeping on CPU with a stand-in for torch.cuda's graphs; the tests marked `cuda` capture for real.

`FakeBackend` takes `graphs.CudaBackend`'s place on CPU: a "capture" keeps the step and a "replay"
calls it on the graph's static inputs, so everything around the graph (static buffers, one graph
per signature, the warm-up undone in place, learning rates as tensors, host reads) runs as on CUDA.
"""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from suite.errors import ConfigError
from suite.measuring import speed
from suite.results import compare, records
from suite.results.cells import cell_settings
from suite.running.config import SuiteOptions
from suite.running.context import RunContext
from suite.running.runner import run_one
from suite.taskapi import registry
from suite.taskapi.data import PaddedSource, TensorSource
from suite.taskapi.spec import Recipe
from suite.training import graphs
from suite.training.loop import BatchwiseOnDevice, make_train_step
from suite.training.optim import build_optimizer, build_scheduler
from tests.helpers import compile_spy, make_record

ROOT = Path(__file__).resolve().parent.parent
def task_class(name: str):
    return registry.load_tasks()[name]

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what happens on a machine without CUDA")


class FakeBackend:
    """CPU stand-in for `graphs.CudaBackend`: no stream, no graph; counts captures and replays."""

    made: list["FakeBackend"] = []

    def __init__(self, device=None):
        self.captures = self.replays = 0
        FakeBackend.made.append(self)

    def kept_rng(self):
        return torch.random.fork_rng(devices=[])

    def warm_up(self, fn, times):
        for _ in range(times):
            fn()

    def capture(self, fn):
        self.captures += 1
        output = torch.zeros(())

        def replay():
            self.replays += 1
            output.copy_(fn())
        return replay, output


@pytest.fixture
def fake_cuda(monkeypatch):
    """Runs on CPU take the `--cuda-graphs` paths, with `FakeBackend` for torch.cuda's graphs."""
    FakeBackend.made = []
    monkeypatch.setattr(graphs, "CudaBackend", FakeBackend)
    monkeypatch.setattr(graphs, "require_cuda", lambda device: None)
    return FakeBackend


# -- refusals ---------------------------------------------------------------------------
def test_bad_combinations_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="CUDA graphs need a CUDA device, not --device cpu"):
        SuiteOptions(device="cpu", cuda_graphs=True)
    both = SuiteOptions(device="cuda", cuda_graphs=True, compile=True)  # compiled kernels, replayed from graphs
    assert both.compile and both.cuda_graphs


def test_cuda_graphs_on_cpu_device_exits_2_before_any_run(tmp_path):
    done = subprocess.run([sys.executable, "run_all.py", "--device", "cpu", "--cuda-graphs", "--results",
                           str(tmp_path / "r")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "CUDA graphs need a CUDA device" in done.stderr
    assert not (tmp_path / "r" / "runs").exists() or not list((tmp_path / "r" / "runs").iterdir())


@no_cuda
def test_a_run_that_lands_on_the_cpu_is_skipped_with_the_reason(results_dir):
    opts = SuiteOptions(profile="smoke", device="auto", cuda_graphs=True, results=results_dir)
    record = run_one(task_class("image_classification"), "mlp", 0, opts, log=lambda _m: None)
    assert record["status"] == "skipped"
    assert record["error"].startswith("--cuda-graphs: CUDA graphs need a CUDA device and this run is on cpu")
    assert record["config"]["cuda_graphs"] is True and record["steps"] in (0, None)
    assert records.validate(record) == []


def test_a_fitted_model_is_skipped_not_run_eagerly(results_dir, fake_cuda):
    opts = SuiteOptions(profile="smoke", device="auto", cuda_graphs=True, results=results_dir)
    record = run_one(task_class("image_classification"), "logreg_pixels", 0, opts, log=lambda _m: None)
    assert record["status"] == "skipped" and "no step to capture" in record["error"]


def test_the_loop_refuses_batches_that_vary_in_shape(results_dir, fake_cuda):
    opts = SuiteOptions(profile="smoke", device="auto", cuda_graphs=True, results=results_dir)
    record = run_one(task_class("sentiment"), "bilstm", 0, opts, log=lambda _m: None)
    assert record["status"] == "skipped" and "vary in shape" in record["error"], record["error"]
    assert not fake_cuda.made, "refused before any capture"


def test_sources_declare_whether_their_batches_keep_one_shape():
    fixed = TensorSource(x=torch.zeros(4, 2))
    padded = PaddedSource(torch.tensor([1, 2]), ("ids",), ids=torch.zeros(2, 2, dtype=torch.long))
    assert fixed.fixed_shapes and not padded.fixed_shapes
    assert BatchwiseOnDevice(fixed, torch.device("cpu")).fixed_shapes
    assert not BatchwiseOnDevice(padded, torch.device("cpu")).fixed_shapes


# -- the record and the cell key -------------------------------------------------------------
def test_the_flag_is_in_the_config_only_when_set_and_keys_a_cell_of_its_own():
    from suite.running.runner import resolved_config, run_spec

    spec = run_spec(task_class("image_classification"), "cnn", 0, SuiteOptions(profile="smoke"))
    plain = resolved_config(spec, SuiteOptions(profile="smoke"), "cuda", "bf16", 1)
    captured = resolved_config(spec, SuiteOptions(profile="smoke", cuda_graphs=True), "cuda", "bf16", 1)
    assert "cuda_graphs" not in plain, "a default run keeps the config hash it had before the flag"
    assert captured["cuda_graphs"] is True
    assert records.config_hash(plain) != records.config_hash(captured)


def test_records_with_and_without_graphs_never_pool():
    def record(seed, graphs_on, ttt):
        config = {"profile": "smoke", "seed": seed, "precision": "bf16", "compile": False, "world_size": 1,
                  **({"cuda_graphs": True} if graphs_on else {})}
        return make_record(seed=seed, ttt=ttt, config=config, run_id=f"toy.mlp.{graphs_on}.s{seed}")

    recs = [record(0, False, 10.0), record(1, False, 12.0), record(0, True, 4.0), record(1, True, 6.0)]
    assert [cell_settings(r)["cuda_graphs"] for r in recs] == ["off", "off", "on", "on"]
    assert cell_settings(make_record())["cuda_graphs"] == "off"  # an old record never captured
    assert all(records.validate(r) == [] for r in recs)
    table = compare.to_table(compare.fit_only(compare.to_frame(recs)), "model")
    assert sorted(zip(table["cuda_graphs"], (c.split(" ")[0] for c in table["time_to_target_s"]))) == [
        ("off", "11"), ("on", "5")]


# -- capture bookkeeping (FakeBackend) -----------------------------------------------------------
def _toy(seed: int = 0, optimizer: str = "adamw"):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
    recipe = Recipe(batch_size=8, lr=0.05, optimizer=optimizer, warmup_frac=0.25)
    opt = build_optimizer(model, recipe, capturable=True)
    sched = build_scheduler(opt, recipe, 12)

    def step(batch):
        loss = nn.functional.cross_entropy(model(batch["x"]), batch["y"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()
    return model, opt, sched, step


def _batches(n: int, sizes=(8, 8, 6)) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    return [{"x": torch.randn(sizes[i % len(sizes)], 4, generator=g),
             "y": torch.randint(0, 3, (sizes[i % len(sizes)],), generator=g)} for i in range(n)]


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_a_captured_step_trains_exactly_as_the_eager_one(optimizer):
    """The warm-up before each capture is undone in place (weights, batch-norm statistics, optimizer
    state, random streams) and the schedule reaches the graph through its learning-rate tensor. Both
    sides use the same optimizer (learning rates as float32 tensors), so the figures are identical."""
    batches = _batches(12)
    model_e, opt_e, sched_e, step_e = _toy(optimizer=optimizer)
    graphs.prepare_optimizer(opt_e)
    torch.manual_seed(7)
    eager = []
    for b in batches:
        eager.append(step_e(b))
        sched_e.step()
    model_c, opt_c, sched_c, step_c = _toy(optimizer=optimizer)
    backend = FakeBackend()
    captured_step = graphs.CapturedStep(step_c, model_c, opt_c, backend=backend)
    torch.manual_seed(7)
    captured = []
    for b in batches:
        captured.append(captured_step(b))
        sched_c.step()
    assert backend.captures == 2 and len(captured_step.graphs) == 2, "one graph per shape (8 and 6 rows)"
    assert backend.replays == len(batches)
    torch.testing.assert_close(torch.stack(captured), torch.stack(eager), rtol=0, atol=0)
    for (name, a), b in zip(model_c.state_dict().items(), model_e.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert float(opt_c.param_groups[0]["lr"]) == pytest.approx(opt_e.param_groups[0]["lr"])


def test_each_replay_copies_its_batch_into_the_graphs_static_inputs():
    model, opt, _, step = _toy()
    seen = []
    captured = graphs.CapturedStep(lambda b: seen.append(b) or step(b), model, opt, backend=FakeBackend())
    batches = _batches(3, sizes=(8,))
    for b in batches:
        captured(b)
    graph = next(iter(captured.graphs.values()))
    assert all(s is graph.inputs for s in seen[-3:]), "replays run on the graph's own buffers"
    assert torch.equal(graph.inputs["x"], batches[-1]["x"]) and graph.inputs["x"] is not batches[-1]["x"]


def test_freeze_refuses_a_new_shape_and_prepare_trains_nothing():
    model, opt, _, step = _toy()
    before = copy.deepcopy(model.state_dict())
    captured = graphs.CapturedStep(step, model, opt, backend=FakeBackend())
    eight, six = _batches(2, sizes=(8, 6))
    captured.prepare(eight)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    captured.freeze()
    captured(eight)
    with pytest.raises(graphs.Uncapturable, match="new shape .*x 6x4.*after the warm-up"):
        captured(six)


def test_a_learning_rate_replaced_after_capture_is_an_error_not_a_stale_graph():
    model, opt, _, step = _toy()
    captured = graphs.CapturedStep(step, model, opt, backend=FakeBackend())
    graphs.set_lr(opt.param_groups[0], 0.01)  # in place: fine
    captured(_batches(1)[0])
    opt.param_groups[0]["lr"] = 0.01
    with pytest.raises(RuntimeError, match="replaced after capture"):
        captured(_batches(1)[0])


def test_host_reads_make_a_graph_per_batch_only_where_batches_repeat():
    model, opt, _, step = _toy()

    def reading(batch):
        graphs.host_values(batch["y"].sum())  # as a packed sequence reads its lengths
        return step(batch)

    a, b = _batches(2, sizes=(8,))
    with pytest.raises(graphs.Uncapturable, match="reads device values on the host"):
        graphs.CapturedStep(reading, model, opt, backend=FakeBackend())(a)
    backend = FakeBackend()
    pool = graphs.CapturedStep(reading, model, opt, repeating=True, backend=backend)
    for batch in (a, b, a, b):
        pool(batch)
    assert backend.captures == 2 and len(pool.graphs) == 2


def test_host_values_replays_the_warm_ups_copies_while_capturing():
    reads = graphs._HostReads()
    with reads.active(capturing=False):
        first = graphs.host_values(torch.tensor([3, 1]))
    with reads.active(capturing=True):
        assert graphs.host_values(torch.tensor([9, 9])) is first  # the graph holds the warm-up's values
        with pytest.raises(graphs.Uncapturable, match="other host values"):
            graphs.host_values(torch.tensor([1]))
    assert graphs._READS is None and torch.equal(graphs.host_values(torch.tensor([5])), torch.tensor([5]))


def test_a_capture_that_fails_skips_the_run_with_its_first_cause():
    class Failing(FakeBackend):
        def capture(self, fn):
            try:
                raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
            finally:
                raise RuntimeError("capture invalidated")  # what ending the capture adds

    model, opt, _, step = _toy()
    with pytest.raises(graphs.Uncapturable, match="cannot be captured \\(CUDA error: operation not permitted"):
        graphs.CapturedStep(step, model, opt, backend=Failing())(_batches(1)[0])


def test_snapshot_restores_in_place_and_resets_state_made_after_it():
    model, opt, _, step = _toy()
    snapshot = graphs.Snapshot(model, opt)
    weight = model[0].weight
    before = weight.detach().clone()
    step(_batches(1)[0])
    state = opt.state[weight]["exp_avg"]
    snapshot.restore()
    assert model[0].weight is weight and torch.equal(weight, before)
    assert opt.state[weight]["exp_avg"] is state and not state.any()


def test_optimizers_a_graph_cannot_replay_are_refused():
    model = nn.Linear(2, 2)
    with pytest.raises(graphs.Uncapturable, match="fused"):
        graphs.prepare_optimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    with pytest.raises(graphs.Uncapturable, match="not a capturable optimizer"):
        graphs.prepare_optimizer(torch.optim.RMSprop(model.parameters()))


def test_the_bilstm_packs_as_torch_does_with_its_sort_on_the_device(monkeypatch):
    """The packed path `graphs.packed_rnn` takes on a GPU (on a CPU it runs `directional_rnn`, tested apart)."""
    from suite.training import directional
    from tasks.text.models import BiLSTM, TextSetup

    monkeypatch.setattr(directional, "supported", lambda _rnn: False)

    model = BiLSTM(TextSetup(vocab_size=50, pad_id=0, max_len=12), embed=8, hidden=8)
    lengths = torch.tensor([12, 5, 7, 12, 3, 9])
    mask = (torch.arange(12) < lengths[:, None]).long()
    ids = torch.randint(1, 50, (6, 12), generator=torch.Generator().manual_seed(0)) * mask

    def reference(ids, mask):  # the forward as written with pack_padded_sequence(enforce_sorted=False)
        emb = model.drop(model.embed(ids))
        packed = nn.utils.rnn.pack_padded_sequence(emb, mask.sum(1).cpu(), batch_first=True, enforce_sorted=False)
        out, _ = nn.utils.rnn.pad_packed_sequence(model.lstm(packed)[0], batch_first=True, total_length=12)
        m = mask.unsqueeze(-1).to(out.dtype)
        pooled = torch.cat([(out * m).sum(1) / lengths.unsqueeze(-1), out.masked_fill(m == 0, float("-inf")).amax(1)],
                           dim=1)
        return model.head(model.drop(pooled))

    torch.manual_seed(3)  # dropout on: the same draws, the same rows
    ours = model(ids, mask)
    torch.manual_seed(3)
    torch.testing.assert_close(ours, reference(ids, mask), rtol=0, atol=0)


# -- the trainers on CPU, with FakeBackend ----------------------------------------------------------
def test_the_loop_trains_the_same_run_captured_or_eager(results_dir, fake_cuda):
    def run(**kw):
        opts = SuiteOptions(profile="smoke", device="auto", results=results_dir, **kw)
        return run_one(task_class("image_classification"), "cnn", 0, opts, log=lambda _m: None)

    eager, captured = run(), run(cuda_graphs=True)
    assert captured["status"] == "ok", captured["error"]
    assert captured["config"]["cuda_graphs"] is True and "cuda_graphs" not in eager["config"]
    (backend,) = fake_cuda.made
    assert backend.captures == 1 and backend.replays == captured["steps"] + 2, "one graph; 2 warm-up replays"
    for a, b in zip(captured["curve"], eager["curve"]):
        assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-4)
    assert captured["final_metrics"]["val/accuracy"] == pytest.approx(eager["final_metrics"]["val/accuracy"],
                                                                       abs=0.02)


def test_captured_or_eager_the_loop_evaluates_the_same_weight_average(results_dir, fake_cuda):
    def run(**kw):
        opts = SuiteOptions(profile="smoke", device="auto", results=results_dir, set=["recipe.ema_decay=0.8"], **kw)
        return run_one(task_class("image_classification"), "cnn", 0, opts, log=lambda _m: None)

    eager, captured = run(), run(cuda_graphs=True)
    assert captured["status"] == "ok", captured["error"]
    assert captured["config"]["recipe"]["ema_decay"] == 0.8
    for a, b in zip(captured["curve"], eager["curve"], strict=True):
        assert a["val/accuracy"] == pytest.approx(b["val/accuracy"], abs=0.02)
        assert a["val/loss"] == pytest.approx(b["val/loss"], rel=1e-3)


def test_compiled_and_captured_the_loop_trains_the_compiled_run(results_dir, fake_cuda, monkeypatch):
    """--compile with --cuda-graphs: the model is compiled once, compiled before the capture (its warm-up
    steps run the compiled step), the record keys both settings, and the run trains as the compiled one."""
    compiled = compile_spy(monkeypatch)

    def run(**kw):
        opts = SuiteOptions(profile="smoke", device="auto", compile=True, results=results_dir, **kw)
        return run_one(task_class("image_classification"), "mlp", 0, opts, log=lambda _m: None)

    plain, both = run(), run(cuda_graphs=True)
    assert both["status"] == "ok", both["error"]
    assert compiled == ["Sequential", "Sequential"], "each run compiles its model once"
    assert both["config"]["compile"] is True and both["config"]["cuda_graphs"] is True
    assert cell_settings(both)["compile"] == cell_settings(plain)["compile"] != "-"
    assert (cell_settings(both)["cuda_graphs"], cell_settings(plain)["cuda_graphs"]) == ("on", "off")
    (backend,) = fake_cuda.made
    assert backend.captures == 1 and backend.replays == both["steps"] + 2
    for a, b in zip(both["curve"], plain["curve"]):
        assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-4)


@pytest.mark.parametrize("task,model,graph_count,sets,compiled", [
    ("image_classification", "mlp", 1, [], False), ("atari_rl", "ppo_cnn", 1, [], False),
    ("sentiment", "bilstm", 2, ["model.embed=16", "model.hidden=16"], False),  # full-size is slow on a CPU
    ("image_classification", "mlp", 1, ["model.width=64"], True)])  # compiled kernels, captured
def test_the_speed_profile_captures_one_graph_per_shape_or_per_batch(task, model, graph_count, sets, compiled,
                                                                     results_dir, fake_cuda, monkeypatch):
    monkeypatch.setitem(speed.STEPS, "cpu", speed.Steps(pool=2, warmup=1, measured=2, env_steps=5))
    opts = SuiteOptions(profile="speed", device="auto", cuda_graphs=True, compile=compiled, results=results_dir,
                        set=sets)
    record = run_one(task_class(task), model, 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["speed"]["cuda_graphs"] == graph_count  # bilstm: its packed layout is read per batch
    assert sum(b.captures for b in fake_cuda.made) == graph_count
    assert record["config"]["cuda_graphs"] is True and records.validate(record) == []
    assert record["config"]["compile"] is compiled and record["flops_per_sample"] > 0  # counted on the eager model


def test_ppo_captures_its_update_before_the_clock_starts(results_dir, fake_cuda):
    opts = SuiteOptions(profile="smoke", device="auto", cuda_graphs=True, results=results_dir)
    record = run_one(task_class("atari_rl"), "ppo_cnn", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    (backend,) = fake_cuda.made
    assert backend.captures == 1 and backend.replays > 0 and record["warmup_s"] > 0


# -- CUDA: real graphs ---------------------------------------------------------------------------
def _steps_on_cuda(task_name: str, model_name: str, captured: bool, n: int = 6, compiled: bool = False):
    cls = task_class(task_name)
    task = cls(cls.spec_for("speed", model_name), data_dir=".")
    device = torch.device("cuda")
    torch.manual_seed(0)
    generator = torch.Generator(device=device).manual_seed(0)
    pool = [task.synthetic_batch(32, device, generator) for _ in range(3)]
    torch.manual_seed(0)
    model = task.build_model().to(device)
    recipe = task.spec.recipe
    optimizer = build_optimizer(model, recipe, capturable=True)
    ctx = RunContext(device=device, precision="fp32", compile=False, generator=torch.Generator(), seed=0)
    step = make_train_step(task, model, torch.compile(model) if compiled else model, optimizer, recipe, ctx)
    if captured:
        step = graphs.CapturedStep(step, model, optimizer, repeating=True)
    else:
        graphs.prepare_optimizer(optimizer)  # the same optimizer: only the replay differs
    torch.manual_seed(1)  # the steps' own random streams (dropout, augmentation)
    losses = torch.stack([step(pool[i % len(pool)]) for i in range(n)]).cpu()
    return losses, {k: v.detach().cpu() for k, v in model.state_dict().items()}, step


@pytest.mark.cuda
@pytest.mark.parametrize("task,model,graph_count", [("keyword_spotting", "ds_cnn", 1), ("sentiment", "bilstm", 3)])
def test_captured_steps_match_eager_on_cuda(task, model, graph_count, monkeypatch):
    # Deterministic cuDNN algorithms on both sides: what is compared is the replay, not the algorithm picks.
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    eager_losses, eager_state, _ = _steps_on_cuda(task, model, captured=False)
    losses, state, step = _steps_on_cuda(task, model, captured=True)
    assert len(step.graphs) == graph_count
    torch.testing.assert_close(losses, eager_losses, rtol=1e-4, atol=1e-5)
    for name, value in state.items():
        torch.testing.assert_close(value, eager_state[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.cuda
def test_compiled_kernels_replayed_from_a_graph_train_as_eager_on_cuda(monkeypatch):
    """--compile --cuda-graphs: torch.compile's kernels (compiled in the warm-up) captured and replayed
    train the model as eager steps do, up to the rounding fused kernels change."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    eager_losses, eager_state, _ = _steps_on_cuda("keyword_spotting", "ds_cnn", captured=False)
    losses, state, step = _steps_on_cuda("keyword_spotting", "ds_cnn", captured=True, compiled=True)
    assert len(step.graphs) == 1
    torch.testing.assert_close(losses, eager_losses, rtol=1e-3, atol=1e-4)
    for name, value in state.items():
        torch.testing.assert_close(value, eager_state[name], rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.cuda
def test_speed_profile_with_graphs_on_cuda(results_dir, monkeypatch):
    monkeypatch.setitem(speed.STEPS, "cuda", speed.Steps(pool=2, warmup=2, measured=3, env_steps=20))
    opts = SuiteOptions(profile="speed", device="cuda", cuda_graphs=True, results=results_dir)
    record = run_one(task_class("keyword_spotting"), "ds_cnn", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["speed"]["cuda_graphs"] == 1 and record["config"]["cuda_graphs"] is True


@pytest.mark.cuda
def test_a_step_that_syncs_is_skipped_with_the_reason_on_cuda(results_dir, monkeypatch):
    monkeypatch.setitem(speed.STEPS, "cuda", speed.Steps(pool=2, warmup=2, measured=3, env_steps=20))
    opts = SuiteOptions(profile="speed", device="cuda", cuda_graphs=True, results=results_dir)
    record = run_one(task_class("speech_recognition"), "ctc_bigru", 0, opts, log=lambda _m: None)
    assert record["status"] == "skipped" and record["error"].startswith("--cuda-graphs: the training step cannot be")


# -- bench/cuda_graphs.py ------------------------------------------------------------------------
def _bench():
    from tests.helpers import load_script

    return load_script("bench/cuda_graphs.py", "bench_cuda_graphs")


def test_the_bench_refuses_a_cpu_in_one_line():
    done = subprocess.run([sys.executable, "bench/cuda_graphs.py", "--device", "cpu", "--out", "unused.json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("bench/cuda_graphs.py: CUDA graphs need a CUDA device; --device cpu has none "
                                   "to capture on")


def test_the_bench_measures_both_modes_of_a_model(fake_cuda):
    bench = _bench()
    row = bench.measure("keyword_spotting", "ds_cnn", torch.device("cpu"), "fp32", reps=2, steps=1, batch_size=2)
    assert row["graphs"] == 1 and row["batch_size"] == 2 and row["pool"] == bench.POOL
    assert len(row["eager"]["reps"]) == 2 and row["captured"]["samples_per_s"] > 0 and row["speedup"] > 0
    text = bench.table([row, {"task": "atari_rl", "model": "ppo_cnn", "error": "ModuleNotFoundError: gymnasium"}])
    assert "keyword_spotting / ds_cnn" in text and "not measured: ModuleNotFoundError: gymnasium" in text
