"""`--compile` of the models with variable-length inputs: the speech subsampling convs under inductor with
dynamic shapes, and the packed RNN (speech GRU, sentiment BiLSTM), which stays out of compiled graphs."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters

from suite.training.graphs import packed_rnn
from suite.training.loop import compiled
from tasks.speech_recognition import Subsample


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _batch(batch: int, frames: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, 12 mels, frames) features, 0 past each clip's end, and the clips' lengths in frames."""
    lengths = torch.linspace(frames, frames // 2, batch).long()
    feats = torch.randn(batch, 12, frames, generator=generator)
    return feats.masked_fill(torch.arange(frames) >= lengths[:, None, None], 0.0), lengths


def test_subsampling_trains_under_inductor_with_dynamic_shapes_compiled_once(fresh_dynamo):
    """The conv front end of ctc_bigru and conformer_ctc compiled as `--compile` compiles a model whose
    batches vary in length (`loop.compiled`: inductor, dynamic), forward and backward, at three lengths.
    Inductor must not be handed a graph that saves a view of its input for the first conv's backward: it
    fails to order that view's symbolic strides (InductorError "cannot determine truth value of
    Relational"); and a length met after the first compiles nothing (a backward compiled for
    channels-last strides would guard on the length). Outputs and gradients are eager's."""
    torch.manual_seed(0)
    eager = Subsample(12, 2, 8)
    model = copy.deepcopy(eager)
    step = compiled(model, varying_shapes=True)
    generator = torch.Generator().manual_seed(0)
    graphs = []
    with torch._inductor.config.patch(force_disable_caches=True):  # a cached graph would hide a failing one
        for frames in (37, 50, 29):
            feats, lengths = _batch(4, frames, generator)
            out, out_lengths = step(feats, lengths)
            want, want_lengths = eager(feats, lengths)
            torch.testing.assert_close(out, want)
            assert torch.equal(out_lengths, want_lengths)
            out.square().sum().backward()
            want.square().sum().backward()
            for (name, param), ref in zip(model.named_parameters(), eager.parameters()):
                torch.testing.assert_close(param.grad, ref.grad, msg=name)
            graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[0] >= 1 and graphs[1:] == [graphs[0]] * 2, f"graphs compiled after lengths 37, 50, 29: {graphs}"


class _Tagger(nn.Module):
    """Linear -> packed bidirectional RNN -> linear, as the speech GRU and the sentiment BiLSTM run it."""

    def __init__(self, rnn: type[nn.RNNBase]):
        super().__init__()
        self.inp, self.out = nn.Linear(3, 4), nn.Linear(8, 2)
        self.rnn = rnn(4, 4, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.inp(x).relu()
        return self.out(packed_rnn(self.rnn, x, lengths))


@pytest.mark.parametrize("rnn", [nn.GRU, nn.LSTM])
def test_packed_rnn_runs_outside_compiled_graphs(rnn, fresh_dynamo):
    """No compiled graph holds packed_rnn's sorting, host read or packing: it runs as Python, once per
    call, with the batch's own lengths; the compiled model gives eager's outputs at every length."""
    torch.manual_seed(0)
    model = _Tagger(rnn)
    traced: list[set] = []

    def recording(gm, example_inputs):
        traced.append({node.target for node in gm.graph.nodes if node.op in ("call_function", "call_method")})
        return gm.forward

    compiled = torch.compile(model, backend=recording, dynamic=True)
    for lengths in ([5, 3, 2], [7, 7, 1, 4], [2, 1]):
        lengths = torch.tensor(lengths)
        x = torch.randn(len(lengths), int(lengths.max()), 3)
        out = compiled(x, lengths)
        torch.testing.assert_close(out, model(x, lengths))
        out.sum().backward()
    assert traced, "nothing was compiled"
    sorting = {torch.argsort, "argsort", torch.Tensor.argsort, "index_select", torch.index_select, "cpu"}
    assert not [targets & sorting for targets in traced if targets & sorting], \
        f"packed_rnn's sorting was traced into a graph: {traced}"
