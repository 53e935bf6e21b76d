"""Mel spectrogram, DCT and SpecAugment masks in plain torch: the numbers torchaudio's give.

torchaudio 2.11 is the last release the package index serves, so the speech
front end does not depend on it: these follow torchaudio 2.11's
`transforms.MelSpectrogram` (HTK mel scale, no filter normalisation, a
periodic Hann window, centred reflect-padded STFT), `functional.create_dct`
and `functional.mask_along_axis_iid` (the same random draws in the same
order, so a seeded run masks the same bands). tests/test_speech_features.py
checks them against torchaudio where it is installed.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def hz_to_mel(freq: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + freq / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular HTK-mel filters, shape (n_freqs, n_mels); torchaudio's melscale_fbanks(norm=None)."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(float(hz_to_mel(torch.tensor(f_min))), float(hz_to_mel(torch.tensor(f_max))), n_mels + 2)
    f_pts = mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down, up))


def create_dct(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix, shape (n_mels, n_mfcc); torchaudio's create_dct(norm="ortho")."""
    n = torch.arange(float(n_mels))
    k = torch.arange(float(n_mfcc)).unsqueeze(1)
    dct = torch.cos(math.pi / float(n_mels) * (n + 0.5) * k)  # (n_mfcc, n_mels)
    dct[0] *= 1.0 / math.sqrt(2.0)
    dct *= math.sqrt(2.0 / float(n_mels))
    return dct.t()


class MelSpectrogram(nn.Module):
    """Waveforms (..., samples) -> mel power spectrogram (..., n_mels, frames), centred frames."""

    def __init__(self, sample_rate: int, n_fft: int, win_length: int, hop_length: int, n_mels: int,
                 power: float = 2.0):
        super().__init__()
        self.n_fft, self.win_length, self.hop_length, self.power = n_fft, win_length, hop_length, power
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        fb = mel_filterbank(n_fft // 2 + 1, 0.0, float(sample_rate // 2), n_mels, sample_rate)
        self.register_buffer("fb", fb, persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        shape = waveform.shape
        spec = torch.stft(waveform.reshape(-1, shape[-1]), self.n_fft, self.hop_length, self.win_length,
                          self.window, center=True, pad_mode="reflect", normalized=False, onesided=True,
                          return_complex=True).abs().pow(self.power)
        mel = torch.matmul(spec.transpose(-1, -2), self.fb).transpose(-1, -2)
        return mel.reshape(shape[:-1] + mel.shape[-2:])


class AxisMask(nn.Module):
    """SpecAugment: per example (iid) one band of up to `mask_param` bins zeroed along `axis` of
    (batch, channel, freq, time) input: axis 2 masks frequency, axis 3 time."""

    def __init__(self, mask_param: int, axis: int):
        super().__init__()
        self.mask_param, self.axis = mask_param, axis

    def forward(self, specgrams: torch.Tensor) -> torch.Tensor:
        if self.mask_param < 1:
            return specgrams
        axis, dim = self.axis, specgrams.dim()
        device, dtype = specgrams.device, specgrams.dtype
        value = torch.rand(specgrams.shape[: dim - 2], device=device, dtype=dtype) * self.mask_param
        min_value = torch.rand(specgrams.shape[: dim - 2], device=device, dtype=dtype) * (specgrams.size(axis) - value)
        start = min_value.long()[..., None, None]
        end = (min_value.long() + value.long())[..., None, None]
        index = torch.arange(0, specgrams.size(axis), device=device, dtype=dtype)
        masked = specgrams.transpose(axis, -1).masked_fill((index >= start) & (index < end), 0.0)
        return masked.transpose(axis, -1)
