"""The torch front end (tasks/speech/features.py) against torchaudio 2.11's results, on the reference stack."""
import pytest
import torch

from tasks.speech import features
from tasks.speech.audio import LogMel

torchaudio = pytest.importorskip("torchaudio", reason="torchaudio not installed: the torch front end is the only path")


@pytest.mark.parametrize("n_fft, win, hop, n_mels", [(512, 400, 160, 40), (640, 640, 320, 80)])
def test_mel_spectrogram_matches_torchaudio(n_fft, win, hop, n_mels):
    x = torch.randn(3, 8000, generator=torch.Generator().manual_seed(0))
    ours = features.MelSpectrogram(16_000, n_fft, win, hop, n_mels)(x)
    theirs = torchaudio.transforms.MelSpectrogram(16_000, n_fft=n_fft, win_length=win, hop_length=hop,
                                                  n_mels=n_mels, power=2.0)(x)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_dct_matches_torchaudio():
    torch.testing.assert_close(features.create_dct(10, 40), torchaudio.functional.create_dct(10, 40, norm="ortho"))


@pytest.mark.parametrize("axis, theirs", [(2, "FrequencyMasking"), (3, "TimeMasking")])
def test_masks_draw_and_mask_like_torchaudio(axis, theirs):
    x = torch.randn(4, 1, 40, 100)
    torch.manual_seed(7)
    ours = features.AxisMask(8, axis)(x)
    torch.manual_seed(7)
    ref = getattr(torchaudio.transforms, theirs)(8, iid_masks=True)(x)
    assert torch.equal(ours, ref) and not torch.equal(ours, x)


def test_log_mel_front_end_is_unchanged():
    audio = (torch.randn(2, 16_000) * 3000).to(torch.int16)
    ours = LogMel(40, time_mask=10, n_mfcc=10)
    ref = LogMel(40, time_mask=10, n_mfcc=10)
    ref.mel = torchaudio.transforms.MelSpectrogram(16_000, n_fft=512, win_length=400, hop_length=160, n_mels=40)
    torch.testing.assert_close(ours(audio), ref(audio), rtol=1e-3, atol=1e-3)
