"""FLOP counts of the fused recurrent kernels (suite.flops), checked against torch's own count of
the same network where the recurrence runs as plain matmuls (packed input on the CPU)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from suite.flops import cudnn_rnn_backward_flop, cudnn_rnn_flop, flops_of

X = torch.randn(7, 3, 16)  # (time, batch, features)


def _packed(x):
    return nn.utils.rnn.pack_padded_sequence(x, torch.full((x.shape[1],), x.shape[0]))


@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_cpu_lstm_on_padded_input_counts_what_torch_counts_of_its_matmuls(layers, bidirectional):
    lstm = nn.LSTM(16, 32, num_layers=layers, bidirectional=bidirectional)
    fused = flops_of(lambda: lstm(X))  # oneDNN's mkldnn_rnn_layer: torch alone counts 0
    decomposed = flops_of(lambda: lstm(_packed(X)))
    assert fused == decomposed > 0
    # backward: data and weight gradients, the 3x-forward rule (torch's exact count skips the
    # gradient of the input and initial state nobody asked for: a few per cent less)
    both = flops_of(lambda: lstm(X)[0].sum().backward())
    exact = flops_of(lambda: lstm(_packed(X))[0].data.sum().backward())
    assert both == 3 * fused
    assert 1.0 <= both / exact < 1.2


@pytest.mark.parametrize("cls,batch_first,bidirectional", [(nn.GRU, False, False), (nn.LSTM, True, True)])
def test_cudnn_formulas_match_the_cpu_count_from_the_same_weight_shapes(cls, batch_first, bidirectional):
    net = cls(16, 32, num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    x = X.transpose(0, 1) if batch_first else X
    weights = [p.shape for p in net._flat_weights]
    stride = len(weights) // (2 * (2 if bidirectional else 1))
    forward = cudnn_rnn_flop(x.shape, weights, stride, None, None, None, 0, 32, 0, 2, batch_first, 0.0, True,
                             bidirectional, [], None)
    assert forward == flops_of(lambda: net(_packed(X)))
    packed_forward = cudnn_rnn_flop(torch.Size([21, 16]), weights, stride, None, None, None, 0, 32, 0, 2, False,
                                    0.0, True, bidirectional, [3] * 7, None)
    assert packed_forward == forward  # packed input: (tokens, features) with batch sizes
    backward = cudnn_rnn_backward_flop(x.shape, weights, stride, None, None, None, None, None, None, None, 0, 32,
                                       0, 2, batch_first, 0.0, True, bidirectional, [], None, None,
                                       [True, True, True, True])
    frozen = cudnn_rnn_backward_flop(x.shape, weights, stride, None, None, None, None, None, None, None, 0, 32,
                                     0, 2, batch_first, 0.0, True, bidirectional, [], None, None,
                                     [True, True, True, False])
    assert backward == 2 * forward and frozen == forward  # no weight gradients asked: data gradients only


@pytest.mark.cuda
def test_cuda_recurrent_layers_are_counted():
    lstm = nn.LSTM(16, 32, num_layers=2, bidirectional=True).cuda()
    x = X.cuda()
    expected = flops_of(lambda: lstm.cpu()(_packed(X)))
    lstm.cuda()
    assert flops_of(lambda: lstm(x)) == expected
    assert flops_of(lambda: lstm(x)[0].sum().backward()) == 3 * expected
