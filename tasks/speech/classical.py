"""Speech models with no learned features: MFCCs into one fitted or trained linear map.

  mfcc_logreg      keyword spotting: MFCCs and their deltas, mean and standard deviation over
                   the clip (a fixed-length vector however the word sits in the second) +
                   logistic regression, fitted by `suite.training.estimator`.
  MFCCLinearCTC    speech recognition: one linear layer from a window of MFCC frames to
                   characters, trained with CTC by the ordinary supervised loop (a
                   no-hidden-layer network: the "shallow" extreme of `ctc_bigru`).
MFCCs come from the tasks' own front end (`LogMel` with `n_mfcc`: torchaudio's mel
filterbank, log, DCT, per-utterance normalisation). `MFCCLinearCTC` gives it the clip lengths, so
a clip's MFCCs are normalised over its own frames, as the log-mel models' features are.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from suite import FittedClassifier
from tasks.speech.audio import ALPHABET, LogMel, frames


def mfcc_stats(audio: torch.Tensor, frontend: LogMel) -> np.ndarray:
    """(batch, samples) -> (batch, 4 n_mfcc): mean and std over time of the MFCCs and of their deltas."""
    with torch.no_grad():
        mfcc = frontend(audio.cpu())  # (batch, n_mfcc, frames)
        delta = mfcc[:, :, 1:] - mfcc[:, :, :-1]
        stats = [mfcc.mean(2), mfcc.std(2), delta.mean(2), delta.std(2)]
    return torch.cat(stats, 1).numpy()


def mfcc_logreg(n_mfcc: int = 20, n_mels: int = 40, hop: int = 320, win: int = 640, c: float = 1.0,
                max_iter: int = 1000) -> FittedClassifier:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frontend = LogMel(n_mels, n_mfcc=n_mfcc, hop=hop, win=win)
    return FittedClassifier(lambda audio: mfcc_stats(audio, frontend),
                            make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter)),
                            inputs=("audio",))


def mfcc_frontend(n_mfcc: int = 13, n_mels: int = 40) -> LogMel:
    """`MFCCLinearCTC`'s front end (the speech task caches its features per split with it)."""
    return LogMel(n_mels, n_mfcc=n_mfcc)


class MFCCLinearCTC(nn.Module):
    """Per-frame character log-probabilities from one linear map of 2 `context` + 1 MFCC frames.

    The map is a Conv1d over time (a linear layer on each stacked window), taken every `stride`
    frames (10 ms each); SpecAugment is not applied: the features stay fixed. Each clip's MFCCs are
    normalised over its own frames and are 0 past its end, where the map's window reads the zeros of
    its own padding when the clip is alone: a clip's outputs do not depend on the clips batched with it.
    """

    def __init__(self, n_mfcc: int = 13, n_mels: int = 40, context: int = 4, stride: int = 2):
        super().__init__()
        self.frontend = mfcc_frontend(n_mfcc, n_mels)
        self.linear = nn.Conv1d(n_mfcc, len(ALPHABET) + 1, 2 * context + 1, stride=stride, padding=context)
        self.stride = stride

    def forward(self, audio, lengths, augment: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """`audio`: waveforms (batch, samples), or cached MFCCs (batch, frames, n_mfcc); `lengths` in samples."""
        logits = self.linear(self.frontend(audio, lengths=lengths))  # (batch, classes, frames / stride)
        out_lengths = ((frames(lengths) - 1) // self.stride + 1).clamp(max=logits.shape[2])
        return F.log_softmax(logits.transpose(1, 2), -1), out_lengths
