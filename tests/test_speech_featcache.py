"""Log-mel features computed once per split equal those computed on every step (tasks/speech/featcache.py)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from tasks.speech.audio import LogMel, transcript_source
from tasks.speech.featcache import FeatureSource, cache_features, feature_bytes


def toy_split(n: int = 12, seed: int = 0):
    """Clips of 0.1-1 s (noise bursts and tones) with short transcripts, as `transcript_source` holds them."""
    rng = np.random.default_rng(seed)
    clips, texts = [], []
    for i in range(n):
        length = int(rng.integers(1_600, 16_000))
        t = np.arange(length) / 16_000
        wave = 8_000 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 2_000 * rng.standard_normal(length)
        clips.append(wave.astype(np.int16))
        texts.append("ab"[: 1 + i % 2])
    return transcript_source(clips, texts, {})


def per_step_batches(source, batch_size, seed):
    return source.batches(batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed), drop_last=True)


def test_cached_features_equal_the_features_computed_per_step():
    source, frontend = toy_split(), LogMel(40)
    cached = cache_features(source, frontend, batch_size=5)  # other batches than training draws: no matter
    assert isinstance(cached, FeatureSource) and len(cached) == len(source)
    pairs = zip(per_step_batches(source, 4, seed=3), per_step_batches(cached, 4, seed=3))
    for audio_batch, feat_batch in itertools.islice(pairs, 3):
        assert torch.equal(audio_batch["lengths"], feat_batch["lengths"])  # the same clips, same order
        assert torch.equal(audio_batch["target"], feat_batch["target"])
        on_the_fly = frontend(audio_batch["audio"], lengths=audio_batch["lengths"])
        from_cache = frontend(feat_batch["feats"], lengths=feat_batch["lengths"])
        assert from_cache.shape == on_the_fly.shape
        torch.testing.assert_close(from_cache, on_the_fly, rtol=1e-4, atol=1e-4)


def test_a_clips_features_do_not_depend_on_the_clips_batched_with_it():
    source, frontend = toy_split(), LogMel(40)
    lengths = source.tensors["lengths"]
    alone = [frontend.features(source.flat[o: o + n][None], n[None]) for o, n in zip(source.offsets, lengths)]
    batched = frontend.features(torch.stack([torch.nn.functional.pad(source.flat[o: o + n], (0, 16_000 - int(n)))
                                             for o, n in zip(source.offsets, lengths)]), lengths)
    for i, one in enumerate(alone):
        n_frames = one.shape[-1]
        torch.testing.assert_close(batched[i, :, :n_frames], one[0], rtol=1e-4, atol=1e-4)
        assert batched[i, :, n_frames:].abs().max() == 0  # past its end: zeros
        assert abs(float(one.mean())) < 1e-4 and float(one.std()) == pytest.approx(1.0, abs=1e-3)


def test_masks_draw_the_same_random_numbers_from_cached_features():
    source, frontend = toy_split(), LogMel(40, time_mask=5)
    cached = cache_features(source, frontend)
    audio_batch = next(per_step_batches(source, 4, seed=1))
    feat_batch = next(per_step_batches(cached, 4, seed=1))
    torch.manual_seed(7)
    on_the_fly = frontend(audio_batch["audio"], augment=True, lengths=audio_batch["lengths"])
    torch.manual_seed(7)
    from_cache = frontend(feat_batch["feats"], augment=True, lengths=feat_batch["lengths"])
    torch.testing.assert_close(from_cache, on_the_fly, rtol=1e-4, atol=1e-4)


def test_feature_bytes_count_frames_times_bands():
    source = toy_split(3)
    frames = source.tensors["lengths"] // 160 + 1
    assert feature_bytes(source, LogMel(40)) == int(frames.sum()) * 40 * 4
    assert cache_features(source, LogMel(40)).nbytes() >= feature_bytes(source, LogMel(40))


@pytest.mark.parametrize("profile, model, option, cached", [
    ("quick", "ctc_bigru", "auto", True), ("smoke", "conformer_ctc", "auto", True),
    ("quick", "ctc_bigru", "off", False), ("full", "ctc_bigru", "auto", False),
    ("quick", "mfcc_linear_ctc", "auto", True)])
def test_speech_recognition_caches_front_end_features_of_small_splits(tmp_path, profile, model, option, cached):
    from tasks.speech_recognition import SpeechRecognition

    task = SpeechRecognition(SpeechRecognition.spec_for(profile, model, 0, {"feature_cache": option}), tmp_path)
    assert (task._cacheable_frontend() is not None) == cached


def test_without_lengths_the_front_end_computes_what_it_did_before(tmp_path):
    """Keyword spotting and `clip_norm=False` call it so: normalised over the whole padded row, as before issue #16."""
    audio = toy_split(4).flat[:4 * 8_000].reshape(4, 8_000)
    frontend = LogMel(40, time_mask=5)
    x = audio.float() / 32768.0
    feats = torch.log(frontend.mel(x) + 1e-6)
    before = (feats - feats.mean(dim=(1, 2), keepdim=True)) / (feats.std(dim=(1, 2), keepdim=True) + 1e-5)
    assert torch.equal(frontend(audio), before)
    torch.manual_seed(3)
    masked = before.unsqueeze(1)
    for mask in (*frontend.freq_masks, *frontend.time_masks):
        masked = mask(masked)
    torch.manual_seed(3)
    assert torch.equal(frontend(audio, augment=True), masked.squeeze(1))


def test_batch_normalised_features_are_never_cached(tmp_path):
    from tasks.speech_recognition import SpeechRecognition

    spec = SpeechRecognition.spec_for("quick", "ctc_bigru", 0, {}, {"model.clip_norm": "false"})
    assert spec.recipe.model_kwargs["clip_norm"] is False
    assert SpeechRecognition(spec, tmp_path)._cacheable_frontend() is None
