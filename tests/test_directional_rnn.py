"""`directional_rnn`, what `packed_rnn` runs on a CPU: the packed RNN's outputs and gradients, without packing."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from suite.training import directional, graphs


def packed(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """torch's own packed RNN, the reference: each row's first `lengths` steps, zeros past the end."""
    seq = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return nn.utils.rnn.pad_packed_sequence(rnn(seq)[0], batch_first=True, total_length=x.shape[1])[0]


@pytest.mark.parametrize("kind, layers, bidirectional", [
    (nn.GRU, 2, True), (nn.LSTM, 2, True), (nn.GRU, 1, False), (nn.RNN, 3, True)])
def test_directional_rnn_gives_the_packed_rnns_outputs_and_gradients(kind, layers, bidirectional):
    torch.manual_seed(0)
    rnn = kind(5, 6, layers, batch_first=True, bidirectional=bidirectional)
    twin = copy.deepcopy(rnn)
    lengths = torch.tensor([9, 4, 7, 1, 9])
    x = torch.randn(5, 9, 5)
    x_twin = x.clone().requires_grad_()
    x.requires_grad_()
    want, got = packed(rnn, x, lengths), directional.directional_rnn(twin, x_twin, lengths)
    torch.testing.assert_close(got, want)
    (want * torch.linspace(-1, 1, want.shape[-1])).sum().backward()
    (got * torch.linspace(-1, 1, got.shape[-1])).sum().backward()
    torch.testing.assert_close(x_twin.grad, x.grad)
    for (name, param), other in zip(rnn.named_parameters(), twin.parameters()):
        torch.testing.assert_close(other.grad, param.grad, msg=name)
    assert twin.state_dict().keys() == rnn.state_dict().keys()


def test_packed_rnn_takes_the_directional_path_on_a_cpu(monkeypatch):
    """On a CPU `packed_rnn` packs nothing: no pack_padded_sequence call, the packed figures all the same."""
    torch.manual_seed(1)
    rnn = nn.GRU(3, 4, 2, batch_first=True, bidirectional=True)
    lengths, x = torch.tensor([6, 2, 5]), torch.randn(3, 6, 3)
    want = packed(rnn, x, lengths)

    def refuse(*_a, **_k):
        raise AssertionError("packed on a CPU")

    monkeypatch.setattr(nn.utils.rnn, "pack_padded_sequence", refuse)
    torch.testing.assert_close(graphs.packed_rnn(rnn, x, lengths), want)


def test_reverse_within_keeps_the_padding_in_place():
    x = torch.arange(8.0).view(2, 4, 1)
    out = directional.reverse_within(x, directional.reversal(torch.tensor([3, 4]), 4))
    assert out.squeeze(-1).tolist() == [[2, 1, 0, 3], [7, 6, 5, 4]]
