"""`--compile`: every compilation happens in the warm-up segment, none on the train or evaluation clocks.

torch.compile is given a backend that compiles nothing (it runs the traced graph as it is) and counts
each graph it is handed under the segment of the run's clock that is open at that moment. Dynamo's
tracing, guards and recompilations are the real ones; only the code generation is left out, so the
runs take seconds.
"""
from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from suite import Budget, PaddedSource, ProfileSpec, Recipe, Target, Task, TensorSource
from suite.measuring import timing
from suite.running.config import SuiteOptions
from suite.running.runner import run_one


@pytest.fixture
def compiles(monkeypatch) -> Counter:
    """Graphs compiled per clock segment ("none" when no segment is open) in the runs of one test."""
    torch._dynamo.reset()  # graphs a previous test compiled would be reused, never counted
    counts: Counter = Counter()
    clocks: list[timing.SegmentClock] = []
    original_start = timing.SegmentClock.start

    def start(self, name):
        if not clocks or clocks[-1] is not self:
            clocks.append(self)
        original_start(self, name)

    def counting_backend(graph, example_inputs):
        open_segment = clocks[-1]._open if clocks else None
        counts[open_segment[0] if open_segment else "none"] += 1
        return graph.forward

    original_compile = torch.compile

    def compile_counted(model, **kwargs):
        kwargs.pop("options", None)  # inductor's settings: this backend generates no code
        return original_compile(model, **{**kwargs, "backend": counting_backend})

    monkeypatch.setattr(timing.SegmentClock, "start", start)
    monkeypatch.setattr(torch, "compile", compile_counted)
    yield counts
    torch._dynamo.reset()


def _run(task_cls, model: str, tmp_path, **options) -> dict:
    opts = SuiteOptions(profile="smoke", device="cpu", compile=True, results=tmp_path, **options)
    record = run_one(task_cls, model, 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    return record


def _assert_all_in_warmup(compiles: Counter, record: dict) -> None:
    assert compiles["warmup"] >= 1, f"nothing compiled in the warm-up: {dict(compiles)}"
    assert set(compiles) == {"warmup"}, f"graphs compiled outside the warm-up: {dict(compiles)}"
    assert record["warmup_s"] > 0


@pytest.mark.parametrize("model", ["ppo_cnn", "dqn_cnn"])
def test_rl_learner_compiles_in_the_warmup(model, compiles, tmp_path):
    """The compiled learner's update is compiled before the train clock starts, on a zero minibatch."""
    from tasks.atari_rl import AtariRL

    record = _run(AtariRL, model, tmp_path)
    _assert_all_in_warmup(compiles, record)
    assert record["steps"] > 0 and len(record["curve"]) >= 1


def test_fixed_shape_run_compiles_training_and_evaluation_in_the_warmup(compiles, tmp_path):
    """image_classification: the training step and the evaluation (eval mode, no_grad: graphs of their
    own) are compiled in the warm-up."""
    from tasks.image_classification import ImageClassification

    record = _run(ImageClassification, "cnn", tmp_path)
    _assert_all_in_warmup(compiles, record)
    assert len(record["curve"]) >= 2, "later evaluations too are free of compilation"


def test_variable_shape_run_compiles_once_for_every_batch_length(compiles, tmp_path):
    """sentiment: batches are trimmed to their longest sentence, so their lengths vary from step to
    step; none of the later lengths compiles again, in training or in evaluation."""
    from tasks.sentiment import Sentiment

    record = _run(Sentiment, "tiny_bert", tmp_path, max_steps=12)
    _assert_all_in_warmup(compiles, record)
    assert len(record["curve"]) >= 2


@pytest.mark.parametrize("model", ["ctc_bigru", "conformer_ctc"])
def test_speech_models_compile_training_and_evaluation_in_the_warmup(model, compiles, tmp_path):
    """speech_recognition: clips of varying length, a graph break before the subsampling convs (and, for
    ctc_bigru, the GRU run eagerly): every graph, in training and evaluation, is compiled in the warm-up."""
    from tasks.speech_recognition import SpeechRecognition

    record = _run(SpeechRecognition, model, tmp_path, max_steps=12, train_to_budget=True)
    _assert_all_in_warmup(compiles, record)
    assert len(record["curve"]) >= 2


def test_bilstm_compiles_nothing_outside_the_warmup(compiles, tmp_path):
    """sentiment's BiLSTM: dynamo stops at the LSTM and the packing around it runs eagerly
    (`graphs.packed_rnn`), so no batch length compiles anything on the train or evaluation clocks."""
    from tasks.sentiment import Sentiment

    record = _run(Sentiment, "bilstm", tmp_path, max_steps=12, train_to_budget=True)
    assert set(compiles) <= {"warmup"}, f"graphs compiled outside the warm-up: {dict(compiles)}"
    assert record["steps"] == 12 and len(record["curve"]) >= 2


class _Bag(nn.Module):
    """Mean of token embeddings over the padded length, then a linear layer: shapes only matter here."""

    def __init__(self):
        super().__init__()
        self.embed, self.head = nn.Embedding(16, 4), nn.Linear(4, 2)

    def forward(self, ids):
        return self.head(self.embed(ids).mean(1))


class _Tokens(Task):
    """64 items of 8 tokens, trained in batches of 8 and evaluated in batches of 24: 24, 24, then a
    short 16. `seen` keeps the shapes of the batches the loss is called on."""

    name = "toy_tokens"
    models = {"bag": _Bag}
    default_model = "bag"
    metrics = {"accuracy": True}
    profiles = {"smoke": ProfileSpec("toy", Target("val/accuracy", 1.01, True, "never met"),
                                     Budget(max_steps=16, max_time_s=30, eval_every=32),
                                     {"bag": Recipe(batch_size=8, lr=0.1, schedule="constant", warmup_frac=0.0)})}
    seen: list[tuple[int, int]] = []

    def load(self, split):
        return TensorSource(ids=torch.arange(8).repeat(64, 1), y=torch.arange(64) % 2)

    def loss(self, model, batch):
        self.seen.append(tuple(batch["ids"].shape))
        return F.cross_entropy(model(batch["ids"]), batch["y"])

    def evaluate(self, model, source):
        batches = list(source.batches(24))
        right = sum((model(b["ids"]).argmax(1) == b["y"]).sum().item() for b in batches)
        return {"accuracy": right / len(source)}


class _SquareFirstBatch(_Tokens):
    """The items padded to 8 tokens, batches trimmed to their longest item: seven batches in eight are
    8 x 8 (the first one trained, with this seed), one is 8 x 3."""

    name = "toy_square_first_batch"

    def load(self, split):
        lengths = torch.tensor([8] * 56 + [3] * 8)
        ids = torch.arange(8).repeat(64, 1) * (torch.arange(8) < lengths[:, None])
        return PaddedSource(lengths, ("ids",), ids=ids, y=lengths % 2)


def test_every_evaluation_batch_shape_compiles_in_the_warmup(compiles, tmp_path):
    """Fixed shapes: the short last evaluation batch is another shape, compiled in the warm-up too."""
    record = _run(_Tokens, "bag", tmp_path)
    _assert_all_in_warmup(compiles, record)
    assert len(record["curve"]) >= 2


def test_a_batch_whose_length_equals_the_batch_size_does_not_fix_the_compiled_sizes(compiles, tmp_path):
    """The first batch trained is 8 x 8: compiled with that one size for both dimensions, the 8 x 3
    batches would compile again on the train clock."""
    _SquareFirstBatch.seen = []
    record = _run(_SquareFirstBatch, "bag", tmp_path)
    trained = _SquareFirstBatch.seen[1:]  # seen[0]: the FLOP count
    assert trained[0] == (8, 8) and (8, 3) in trained, "the split no longer makes the case this test is about"
    _assert_all_in_warmup(compiles, record)
