"""Log-mel features computed once per split instead of on every training step (issue #16).

The front end's STFT, magnitude, mel projection, log, DCT (for MFCCs) and normalisation are
deterministic, so a small split's features are computed once, at load time, and stored back to
back like the audio they replace (frames x features per clip, no padding). Batches are drawn exactly as the audio
split draws them (`suite.taskapi.data.length_batches` on the same sample lengths, so a seed gives the same
batches), and only SpecAugment's random masks run per step, in the model (`LogMel.forward`).
The features are `LogMel.features(audio, lengths)`: a clip's features do not depend on the clips
batched with it, so cached and computed-per-step features are equal up to float rounding
(tests/test_speech_featcache.py).
"""
from __future__ import annotations

from typing import Any

import torch

from suite import BatchSource, RaggedSource, length_batches, pack
from tasks.speech.audio import LogMel, frames

# Splits whose features take more than this stay audio (features then come per step): the quick
# corpus's training split is 104 MB of 40-band features, LibriSpeech's test-clean alone 0.6 GB at 80.
CACHE_LIMIT_BYTES = 256 * 2**20
BYTES_PER_VALUE = 4  # float32


def feature_bytes(source: RaggedSource, frontend: LogMel) -> int:
    """What `cache_features` would store for `source`: its frames x features x 4 bytes."""
    n_frames = frames(source.tensors["lengths"], frontend.mel.hop_length)
    return int(n_frames.sum()) * n_features(frontend) * BYTES_PER_VALUE


def n_features(frontend: LogMel) -> int:
    return frontend.dct.shape[0] if frontend.dct is not None else frontend.mel.fb.shape[1]


class FeatureSource(BatchSource):
    """An ASR split as features: clip i is `feats[frame_offsets[i] : frame_offsets[i] + n_frames[i]]`.

    Batches are the audio split's batches with `feats` (batch, frames, n_feat), zero past each
    clip's frames, in place of the audio; `lengths` stays in samples, as the models and the
    throughput's seconds of audio want it.
    """

    def __init__(self, feats: torch.Tensor, frame_offsets: torch.Tensor, hop: int, info: dict[str, Any],
                 window: int, tensors: dict[str, torch.Tensor]):
        if feats.dim() != 2:
            raise ValueError(f"FeatureSource: feats must be (frames, features), got shape {tuple(feats.shape)}")
        self.feats, self.frame_offsets, self.hop, self.info, self.window = feats, frame_offsets, hop, info, window
        self.tensors = tensors
        self._host_lengths = tensors["lengths"].cpu()  # batches are planned on the host (no device sync)

    def __len__(self) -> int:
        return len(self.frame_offsets)

    @property
    def device(self) -> torch.device:
        return self.feats.device

    def nbytes(self) -> int:
        parts = (self.feats, self.frame_offsets, *self.tensors.values())
        return sum(t.element_size() * t.numel() for t in parts)

    def to(self, device, channels_last=False):
        # channels_last is for 4-D images: it does not apply to (frames, features) rows.
        return FeatureSource(self.feats.to(device), self.frame_offsets.to(device), self.hop, self.info,
                             self.window, {k: v.to(device) for k, v in self.tensors.items()})

    def select(self, index):
        """The clips `index`, their features copied back to back into a new tensor (as `RaggedSource.select`)."""
        host_index = index.cpu()
        n_frames = frames(self._host_lengths, self.hop)[host_index]
        feats = pack(self.feats, self.frame_offsets.cpu()[host_index], n_frames)
        frame_offsets = (torch.cumsum(n_frames, 0) - n_frames).to(self.device)
        on_device = index.to(self.device)
        return FeatureSource(feats, frame_offsets, self.hop, dict(self.info), self.window,
                             {k: v[on_device] for k, v in self.tensors.items()})

    def batches(self, batch_size, *, shuffle=False, generator=None, drop_last=False, shard=(0, 1)):
        for idx, longest in length_batches(self._host_lengths, batch_size, self.window, shuffle=shuffle,
                                           generator=generator, drop_last=drop_last, shard=shard):
            idx = idx.to(self.device, non_blocking=True)
            batch = {k: v[idx] for k, v in self.tensors.items()}
            steps = torch.arange(frames(longest, self.hop), device=self.device)  # the frames of the longest clip
            rows = (self.frame_offsets[idx][:, None] + steps).clamp(max=len(self.feats) - 1)
            past_end = steps >= frames(batch["lengths"], self.hop)[:, None]
            batch["feats"] = self.feats[rows].masked_fill_(past_end[..., None], 0.0)
            yield batch


@torch.no_grad()
def cache_features(source: RaggedSource, frontend: LogMel, batch_size: int = 64) -> FeatureSource:
    """`source`'s clips turned into `frontend.features` once, on the source's device."""
    lengths = source.tensors["lengths"]
    hop = frontend.mel.hop_length
    n_frames = frames(lengths, hop)
    frame_offsets = torch.cumsum(n_frames, 0) - n_frames
    feats = torch.empty(int(n_frames.sum()), n_features(frontend), device=source.device)
    starts, counts = frame_offsets.tolist(), n_frames.tolist()  # host copies: no device read per clip
    order = torch.argsort(lengths, descending=True)  # similar lengths together: little padding to transform
    for chunk in order.split(batch_size):
        audio = source.items(chunk)
        out = frontend.features(audio, lengths[chunk]).transpose(1, 2)  # (batch, frames, n_feat)
        for row, i in zip(out, chunk.tolist()):
            feats[starts[i] : starts[i] + counts[i]] = row[:counts[i]]
    tensors = dict(source.tensors)
    info = {**source.info, "features_cached": True}
    return FeatureSource(feats, frame_offsets, hop, info, source.window, tensors)
