"""FLOP counts (suite.measuring.flops): the fused recurrent kernels, checked against torch's own count of the
same network where the recurrence runs as plain matmuls (packed input on the CPU), and the
convolution backward, checked against torch's count where it is right (groups 1)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from suite.measuring.flops import cudnn_rnn_backward_flop, cudnn_rnn_flop, flops_of

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


@pytest.mark.parametrize("conv,shape", [(nn.Conv2d(8, 16, 3, padding=1), (4, 8, 10, 10)),
                                        (nn.Conv2d(8, 16, (4, 3), stride=2, bias=False), (4, 8, 11, 9)),
                                        (nn.ConvTranspose2d(8, 4, 3, stride=2), (4, 8, 5, 5)),
                                        (nn.Conv1d(6, 6, 5, padding=2), (2, 6, 30))])
def test_dense_convolution_backward_counts_what_torch_counts(conv, shape):
    # groups=1: the corrected formula must agree with torch's own, gradient by gradient
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.randn(shape, requires_grad=True)
    with FlopCounterMode(display=False) as torch_count:
        conv(x).sum().backward()
    assert flops_of(lambda: conv(x).sum().backward()) == torch_count.get_total_flops() > 0
    frozen = torch.randn(shape)  # no input gradient asked: forward + weight gradient
    assert flops_of(lambda: conv(frozen).sum().backward()) == 2 * flops_of(lambda: conv(frozen))


@pytest.mark.parametrize("groups", [2, 16])
def test_grouped_convolution_backward_is_twice_its_forward(groups):
    # torch counts a grouped convolution's weight gradient as if it were dense (groups times too much)
    conv = nn.Conv2d(16, 16, 3, padding=1, groups=groups, bias=False)
    x = torch.randn(4, 16, 12, 12, requires_grad=True)
    forward = flops_of(lambda: conv(x))
    assert forward == 2 * 4 * 12 * 12 * 16 * (16 // groups) * 9
    assert flops_of(lambda: conv(x).sum().backward()) == 3 * forward


def test_keyword_spotting_ds_cnn_counts_its_depthwise_blocks_once_per_group():
    from tasks.keyword_spotting import DSCNN
    model = DSCNN(width=64, blocks=4, dropout=0.0)
    audio = torch.randn(2, 16000)
    forward = flops_of(lambda: model(audio))
    trained = flops_of(lambda: model(audio).sum().backward())
    # the front end (mel filterbank, DCT) has no gradient to count; the body is 3x its forward at most
    assert forward < trained < 3 * forward
