"""A bidirectional RNN over each row's own steps, one direction at a time, without packing.

`graphs.packed_rnn` runs a batch_first RNN over each row's first `lengths` steps only. Packed sequences
give that on every device, but on a CPU torch runs a packed RNN step by step over shrinking batches,
slower than this (a GRU training step 1.2-1.3x: bench/packed_rnn.py). The padded batch gives
the forward direction's outputs exactly (padding comes after a row's last step); the backward direction
gets them exactly over each row reversed within its length, then reversed back. The module's own
weights run both, so parameters, state dict and figures are those of the packed RNN.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_ONE_LAYER: dict[tuple, nn.RNNBase] = {}  # a one-layer, one-direction module per kind and shape, run with given weights


def supported(rnn: nn.RNNBase) -> bool:
    """GRU, LSTM (no projection) and Elman RNNs, batch_first."""
    return rnn.batch_first and getattr(rnn, "proj_size", 0) == 0 and type(rnn) in (nn.GRU, nn.LSTM, nn.RNN)


def reversal(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(rows, steps) gather index putting each row's first `lengths` steps in reverse order, the steps past
    a row's end where they are (its own inverse)."""
    at = torch.arange(steps, device=lengths.device).unsqueeze(0)
    index = lengths.unsqueeze(1) - 1 - at
    return torch.where(index >= 0, index, at)


def reverse_within(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`x` (rows, steps, features) reordered along its steps by a `reversal` index."""
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


def _one_layer(rnn: nn.RNNBase, input_size: int) -> nn.RNNBase:
    key = (type(rnn), input_size, rnn.hidden_size, rnn.bias, getattr(rnn, "nonlinearity", None))
    if key not in _ONE_LAYER:
        extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
        _ONE_LAYER[key] = type(rnn)(input_size, rnn.hidden_size, 1, bias=rnn.bias, batch_first=True, **extra)
    return _ONE_LAYER[key]


def directional_rnn(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`rnn`'s output over each row's first `lengths` steps, zeros past the end (as `graphs.packed_rnn`)."""
    lengths = lengths.to(x.device)
    index = reversal(lengths, x.shape[1])  # one index for every layer's backward direction, both ways
    out = x
    for layer in range(rnn.num_layers):
        if layer:
            out = F.dropout(out, rnn.dropout, rnn.training)  # between layers, as the module applies it
        step = _one_layer(rnn, out.shape[-1])
        halves = []
        for suffix in ("", "_reverse")[: 2 if rnn.bidirectional else 1]:
            weights = {f"{name}_l0": getattr(rnn, f"{name}_l{layer}{suffix}")
                       for name in WEIGHTS[: 4 if rnn.bias else 2]}
            if suffix:
                halves.append(reverse_within(functional_call(step, weights, (reverse_within(out, index),))[0],
                                             index))
            else:
                halves.append(functional_call(step, weights, (out,))[0])
        out = torch.cat(halves, -1)
    inside = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
    return out * inside.unsqueeze(-1).to(out.dtype)
