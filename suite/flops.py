"""Counting FLOPs with torch's FlopCounterMode (matmuls and convolutions, forward and backward).

torch's counter has no formula for the fused recurrent kernels: cuDNN's (`aten._cudnn_rnn`, every
LSTM and GRU on CUDA) and oneDNN's (`aten.mkldnn_rnn_layer`, an LSTM on padded input on the
CPU), so those runs counted nothing but the layers around the recurrence. `recurrent_formulas`
adds them: each 2-D weight of every layer and direction does one matrix-vector product per token
(2 * tokens * rows * cols FLOPs: the count torch itself gives a GRU, or packed input, on the CPU,
where the recurrence runs as plain matmuls); the backward pass does that once for the data
gradients and once more for the weight gradients. That is the usual 3x-forward rule; torch's
exact count of a decomposed GRU is a few per cent lower (no gradient for the first layer's input
or the initial state when nothing asks for them). Elementwise gate arithmetic is not counted, as
for every other layer.
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


def recurrent_formulas() -> dict[Any, Callable[..., int]]:
    """FlopCounterMode `custom_mapping` entries for the fused recurrent ops torch does not count."""
    import torch

    return {torch.ops.aten._cudnn_rnn: cudnn_rnn_flop,
            torch.ops.aten._cudnn_rnn_backward: cudnn_rnn_backward_flop,
            torch.ops.aten.mkldnn_rnn_layer: mkldnn_rnn_layer_flop,
            torch.ops.aten.mkldnn_rnn_layer_backward: mkldnn_rnn_layer_backward_flop}


def flops_of(fn: Callable[[], object]) -> float | None:
    """FLOPs torch counts while `fn()` runs (call backward inside `fn` to count it); None where it cannot."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        counter = FlopCounterMode(display=False, custom_mapping=recurrent_formulas())
        with counter:
            fn()
        return float(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - a model torch cannot count is not an error
        return None
