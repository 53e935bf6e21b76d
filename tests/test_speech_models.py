"""Speech models on bad clips: silence, clips shorter than the receptive field, CTC that cannot align."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from suite.taskapi.data import TensorSource
from suite.taskapi.models import is_estimator
from tasks.speech.audio import MIN_SAMPLES, pad_clips
from tasks.keyword_spotting import KeywordSpotting
from tasks.speech_recognition import SpeechRecognition


@pytest.mark.parametrize("model", sorted(m for m in KeywordSpotting.models if not is_estimator(KeywordSpotting, m)))
def test_keyword_models_on_silence(model):
    kwargs = KeywordSpotting.profiles["smoke"].recipes[model].model_kwargs
    net = KeywordSpotting.models[model](**kwargs).eval()
    logits = net(torch.zeros(3, 16_000, dtype=torch.int16))
    assert logits.shape == (3, 12) and torch.isfinite(logits).all()


def test_mfcc_logreg_fitted_on_noise_scores_silence():
    """Silence has constant MFCCs (zero after per-clip normalisation): finite logits all the same."""
    g = torch.Generator().manual_seed(0)
    audio = (torch.randn(36, 16_000, generator=g) * torch.linspace(100, 8000, 36)[:, None]).to(torch.int16)
    net = KeywordSpotting.models["mfcc_logreg"]()
    net.fit(TensorSource(audio=audio, y=torch.arange(36) % 12), seed=0)
    logits = net(torch.zeros(3, 16_000, dtype=torch.int16))
    assert logits.shape == (3, 12) and torch.isfinite(logits).all()
    assert torch.equal(logits[0], logits[2])


@pytest.mark.parametrize("model", sorted(SpeechRecognition.models))
def test_recognition_models_on_short_and_silent_clips(model):
    import numpy as np

    task = SpeechRecognition(SpeechRecognition.spec_for("smoke", model), data_dir=Path("unused"))
    torch.manual_seed(0)
    net = task.build_model()
    audio, lengths, short = pad_clips([np.zeros(0, np.int16), np.zeros(16_000, np.int16),
                                       (np.random.default_rng(0).standard_normal(8000) * 3000).astype(np.int16)])
    assert short == 1 and int(lengths[0]) == MIN_SAMPLES
    # The first clip is far too short for its transcript: CTC cannot align it and counts it as zero loss.
    batch = {"audio": audio, "lengths": lengths, "target": torch.tensor([[1, 2, 3, 4], [5, 0, 0, 0], [6, 7, 0, 0]]),
             "target_lengths": torch.tensor([4, 1, 2])}
    loss = task.loss(net, batch)
    assert math.isfinite(loss.item())
    log_probs, out_lengths = net(audio, lengths)
    assert torch.isfinite(log_probs).all() and out_lengths.max() <= log_probs.shape[1]
    assert out_lengths[0] < out_lengths[2] < out_lengths[1]
