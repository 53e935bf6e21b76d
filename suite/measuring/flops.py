"""Counting FLOPs with torch's FlopCounterMode (matmuls and convolutions, forward and backward).

torch's counter has no formula for the fused recurrent kernels: cuDNN's (`aten._cudnn_rnn`, every
LSTM and GRU on CUDA) and oneDNN's (`aten.mkldnn_rnn_layer`, an LSTM on padded input on the
CPU), so those runs counted nothing but the layers around the recurrence. `corrected_formulas`
adds them: each 2-D weight of every layer and direction does one matrix-vector product per token
(2 * tokens * rows * cols FLOPs: the count torch itself gives a GRU, or packed input, on the CPU,
where the recurrence runs as plain matmuls); the backward pass does that once for the data
gradients and once more for the weight gradients. That is the usual 3x-forward rule; torch's
exact count of a decomposed GRU is a few per cent lower (no gradient for the first layer's input
or the initial state when nothing asks for them). Elementwise gate arithmetic is not counted, as
for every other layer.

torch's formula for a convolution's backward (`aten.convolution_backward`) counts the weight
gradient as if every input channel met every output channel, ignoring `groups`: a depthwise
convolution's weight gradient came out `groups` times too large (64x in keyword_spotting's DS-CNN,
whose quick run counted 63.3 MFLOP per sample instead of 19.7: a utilisation of 99.6% of this
CPU's fp32 peak instead of 31%). `conv_backward_flop` counts each gradient as the forward's multiply-adds, which is
exact for any convolution (each forward product has one partner in each gradient) and equals
torch's count where groups is 1. (pytorch/pytorch#183405 divides torch's weight-gradient term by
groups; torch 2.11, the reference stack, does not have it.)
"""
from __future__ import annotations

from typing import Any, Callable


def _rnn_tokens(input_shape, batch_sizes) -> int:
    """Tokens the recurrence steps over: packed input is (tokens, features), padded (T, B, F) or (B, T, F)."""
    if batch_sizes:
        return int(input_shape[0])
    return int(input_shape[0]) * int(input_shape[1])


def _matvec_flops(tokens: int, weights) -> int:
    return sum(2 * tokens * int(w[0]) * int(w[1]) for w in weights if len(w) == 2)


def cudnn_rnn_flop(input_shape, weights, _stride0, _weight_buf, _hx, _cx, _mode, _hidden, _proj, _layers,
                   _batch_first, _dropout, _train, _bidirectional, batch_sizes, *args, out_shape=None,
                   **kwargs) -> int:
    return _matvec_flops(_rnn_tokens(input_shape, batch_sizes), weights)


def cudnn_rnn_backward_flop(input_shape, weights, _stride0, _weight_buf, _hx, _cx, _output, _grad_output,
                            _grad_hy, _grad_cy, _mode, _hidden, _proj, _layers, _batch_first, _dropout, _train,
                            _bidirectional, batch_sizes, _dropout_state, _reserve, output_mask, *args,
                            out_shape=None, **kwargs) -> int:
    once = _matvec_flops(_rnn_tokens(input_shape, batch_sizes), weights)
    return once * (2 if output_mask[3] else 1)  # data gradients, plus weight gradients when asked


def mkldnn_rnn_layer_flop(input_shape, w_ih, w_hh, _b_ih, _b_hh, _hx, _cx, _reverse, batch_sizes, *args,
                          out_shape=None, **kwargs) -> int:
    """One layer, one direction per call (oneDNN's LSTM on the CPU)."""
    return _matvec_flops(_rnn_tokens(input_shape, batch_sizes), [w_ih, w_hh])


def mkldnn_rnn_layer_backward_flop(input_shape, w_ih, w_hh, _b_ih, _b_hh, *args, out_shape=None, **kwargs) -> int:
    batch_sizes = args[15] if len(args) > 15 else kwargs.get("batch_sizes")
    return 2 * _matvec_flops(_rnn_tokens(input_shape, batch_sizes), [w_ih, w_hh])  # data and weight gradients


def conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                       _output_padding, _groups, output_mask, *args, out_shape=None, **kwargs) -> int:
    """A convolution's backward: the forward's FLOPs once for the input gradient and once for the
    weight gradient, each when asked (the weight's shape already holds the channels per group)."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def corrected_formulas() -> dict[Any, Callable[..., int]]:
    """FlopCounterMode `custom_mapping` entries: the fused recurrent ops torch does not count, and
    the convolution backward it over-counts for grouped convolutions."""
    import torch

    return {torch.ops.aten._cudnn_rnn: cudnn_rnn_flop,
            torch.ops.aten._cudnn_rnn_backward: cudnn_rnn_backward_flop,
            torch.ops.aten.mkldnn_rnn_layer: mkldnn_rnn_layer_flop,
            torch.ops.aten.mkldnn_rnn_layer_backward: mkldnn_rnn_layer_backward_flop,
            torch.ops.aten.convolution_backward: conv_backward_flop}


def flops_of(fn: Callable[[], object]) -> float | None:
    """FLOPs torch counts while `fn()` runs (call backward inside `fn` to count it); None where it cannot."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        counter = FlopCounterMode(display=False, custom_mapping=corrected_formulas())
        with counter:
            fn()
        return float(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - a model torch cannot count is not an error
        return None
