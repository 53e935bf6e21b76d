"""Packed against directional bidirectional RNNs on this machine's CPU, one training step each, in one run.

`suite.training.graphs.packed_rnn` runs the speech GRU and the sentiment BiLSTM over each row's own
steps. On a CPU it runs `suite.training.directional.directional_rnn` (each direction over the padded
batch, the backward one over rows reversed within their lengths); torch's packed RNN is the baseline.
For each shape, forward and backward of both, interleaved, `--reps` times: medians, ranges and the
ratio of medians, after checking the two give the same outputs. Default shapes: the speech speed
profile's GRU (hidden 512, 4 layers, batch 32, frames as LibriSpeech clips after 4x subsampling) and
the quick profile's (hidden 160, 2 layers).

    python bench/packed_rnn.py [--reps 5] [--frames 200] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite.training.directional import directional_rnn  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402

SHAPES = {"speed ctc_bigru": (512, 4), "quick ctc_bigru": (160, 2)}


def packed(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    seq = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return nn.utils.rnn.pad_packed_sequence(rnn(seq)[0], batch_first=True, total_length=x.shape[1])[0]


def step_s(run, rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> float:
    start = time.perf_counter()
    run(rnn, x, lengths).sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--frames", type=int, default=200, help="the longest clip, in frames after subsampling")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    for name, (hidden, layers) in SHAPES.items():
        torch.manual_seed(0)
        rnn = nn.GRU(hidden, hidden, layers, batch_first=True, bidirectional=True)
        x = torch.randn(args.batch, args.frames, hidden, requires_grad=True)
        lengths = torch.randint(args.frames // 2, args.frames + 1, (args.batch,))
        lengths[0] = args.frames
        with torch.no_grad():
            gap = (packed(rnn, x, lengths) - directional_rnn(rnn, x, lengths)).abs().max().item()
        times: dict[str, list[float]] = {"packed": [], "directional": []}
        step_s(packed, rnn, x, lengths), step_s(directional_rnn, rnn, x, lengths)  # untimed: first-call costs
        for _ in range(args.reps):
            times["packed"].append(step_s(packed, rnn, x, lengths))
            times["directional"].append(step_s(directional_rnn, rnn, x, lengths))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{name}: hidden {hidden}, {layers} layers, batch {args.batch}, {args.frames} frames; "
              f"largest output gap {gap:.1e}")
        for k, v in times.items():
            print(f"  {k:<12} median {med[k]:.3f} s  range [{min(v):.3f}, {max(v):.3f}]  n={len(v)}")
        print(f"  speed-up of directional over packed: {med['packed'] / med['directional']:.2f}x")


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "packed_rnn"))
