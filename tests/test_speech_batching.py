"""A speech recognition model's outputs for a clip do not depend on the clips batched with it: in evaluation,
its log-probabilities on the clip's own frames are the same whether it is scored alone or padded beside
longer clips, and the same from features cached per split as from audio."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.speech.audio import pad_clips, transcript_source
from tasks.speech.featcache import cache_features
from tasks.speech_recognition import SpeechRecognition

# Samples per clip: 41, 101 and 231 frames, odd at the input and after the first subsampling conv, so each
# strided conv's kernel reaches a frame past a clip's end.
LENGTHS = (6_400, 16_000, 36_800)


def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(n) * 3000).astype(np.int16) for n in LENGTHS]


def untrained(model: str) -> torch.nn.Module:
    """The smoke recipe's model, its parameters shifted at random so that no bias or norm offset is 0 (as after
    training: a zero frame of padding would otherwise stay 0 through them), in evaluation mode."""
    task = SpeechRecognition(SpeechRecognition.spec_for("smoke", model), data_dir=Path("unused"))
    torch.manual_seed(0)
    net = task.build_model()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.eval()


@pytest.mark.parametrize("model", sorted(SpeechRecognition.models))
def test_a_clips_log_probs_are_the_same_alone_and_batched_with_longer_clips(model):
    net = untrained(model)
    audio, lengths, _ = pad_clips(clips())
    with torch.no_grad():
        batched, batched_lengths = net(audio, lengths)
        for i, n in enumerate(LENGTHS):
            alone, alone_lengths = net(audio[i : i + 1, :n], lengths[i : i + 1])
            frames = int(alone_lengths[0])
            assert int(batched_lengths[i]) == frames == alone.shape[1]
            torch.testing.assert_close(batched[i, :frames], alone[0], rtol=1e-4, atol=1e-4,
                                       msg=lambda m: f"{model}, clip {i} ({n} samples): {m}")


@pytest.mark.parametrize("model", sorted(SpeechRecognition.models))
def test_cached_features_give_the_log_probs_of_audio(model, tmp_path):
    task = SpeechRecognition(SpeechRecognition.spec_for("smoke", model), tmp_path)
    frontend = task._cacheable_frontend()
    assert frontend is not None, f"{model}'s features are cached in the smoke profile"
    source = transcript_source(clips(), ["a", "b", "c"], {})
    cached = cache_features(source, frontend)
    net = untrained(model)
    with torch.no_grad():
        from_audio = next(source.batches(3))
        from_cache = next(cached.batches(3))
        assert torch.equal(from_audio["lengths"], from_cache["lengths"])
        want, want_lengths = net(from_audio["audio"], from_audio["lengths"])
        got, got_lengths = net(from_cache["feats"], from_cache["lengths"])
    assert torch.equal(got_lengths, want_lengths)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
