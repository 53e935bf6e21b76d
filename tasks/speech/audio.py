"""The audio pipeline shared by the speech tasks: front end, text, CTC decoding, error rates.

Audio is 16 kHz mono. Splits hold it as int16 PCM (half the memory of
float32; ASR clips back to back in a `RaggedSource`, padded only per batch);
the front end, the first module of every speech model, turns it into
float32 and log-mel features on the device, inside the training step, so
no per-item Python work happens while training (speech recognition's small
splits instead hold features computed once: tasks/speech/featcache.py).
SpecAugment masks are applied only when the caller asks (the tasks' `loss`),
never in evaluation.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from suite import MissingExtraError, RaggedSource
from tasks.speech import SAMPLE_RATE, features

HOP = 160  # 10 ms
WIN = 400  # 25 ms
MIN_SAMPLES = WIN  # shorter clips are zero-padded to one window (the front end's receptive field)
ALPHABET = " abcdefghijklmnopqrstuvwxyz'"  # CTC blank is index 0, these are 1..28


class LogMel(nn.Module):
    """int16 or float waveforms (batch, samples) -> normalised log-mel (batch, n_mels, frames).

    With `n_mfcc`, the log-mel bands are turned into that many MFCCs (a DCT), as MLPerf Tiny's KWS does.
    """

    def __init__(self, n_mels: int = 40, freq_mask: int = 8, time_mask: int = 20, masks: int = 2,
                 hop: int = HOP, win: int = WIN, n_mfcc: int | None = None):
        super().__init__()
        # Plain torch, the same numbers as torchaudio's transforms (tasks/speech/features.py).
        self.mel = features.MelSpectrogram(SAMPLE_RATE, n_fft=max(512, win), win_length=win, hop_length=hop,
                                           n_mels=n_mels, power=2.0)
        dct = features.create_dct(n_mfcc, n_mels).T if n_mfcc else None
        self.register_buffer("dct", dct, persistent=False)
        freq_mask = min(freq_mask, max(1, (n_mfcc or n_mels) // 5))
        self.freq_masks = nn.ModuleList(features.AxisMask(freq_mask, axis=2) for _ in range(masks))
        self.time_masks = nn.ModuleList(features.AxisMask(time_mask, axis=3) for _ in range(masks))

    def forward(self, audio: torch.Tensor, augment: bool = False, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Features of `audio` (batch, samples), or `audio` itself when it already holds features
        (batch, frames, n_feat) from `features` (a `FeatureSource` batch); masked when `augment`."""
        if audio.dim() == 3:
            feats = audio.transpose(1, 2).float()
        else:
            feats = self.features(audio, lengths)
        return self.mask(feats) if augment else feats

    def features(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised log-mel (or MFCC) features (batch, n_feat, frames) of waveforms (batch, samples).

        With `lengths` (samples per clip), each clip's features depend on that clip alone, not on the
        clips batched with it, so they can be computed once (`tasks.speech.featcache`): its last frames
        see zeros past its end (never a reflection of the batch's edge), it is normalised over its own
        frames, and its frames past its end are 0. Without `lengths`, the whole padded row is one clip.
        """
        x = audio.float() / 32768.0 if audio.dtype == torch.int16 else audio.float()
        with torch.autocast(x.device.type, enabled=False):  # the FFT and log in float32
            if lengths is not None:
                n_frames = frames(x.shape[-1], self.mel.hop_length)  # the batch's frames before the zeros
                x = nn.functional.pad(x, (0, self.mel.n_fft // 2))
            feats = torch.log(self.mel(x) + 1e-6)
            if lengths is not None:
                feats = feats[..., :n_frames]
            if self.dct is not None:
                feats = torch.einsum("cm,bmt->bct", self.dct, feats)
            if lengths is None:
                # Per-utterance normalisation: loudness and channel differ from clip to clip.
                return (feats - feats.mean(dim=(1, 2), keepdim=True)) / (feats.std(dim=(1, 2), keepdim=True) + 1e-5)
            return normalise_valid(feats, frames(lengths, self.mel.hop_length))

    def mask(self, feats: torch.Tensor) -> torch.Tensor:
        """SpecAugment: iid frequency and time masks on (batch, n_feat, frames) features."""
        with torch.autocast(feats.device.type, enabled=False):
            feats = feats.unsqueeze(1)  # iid masks want (batch, channel, freq, time)
            for mask in (*self.freq_masks, *self.time_masks):
                feats = mask(feats)
            return feats.squeeze(1)


def valid_frames(lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
    """(batch, n_frames) bool: True on each clip's first `lengths` frames."""
    return torch.arange(n_frames, device=lengths.device) < lengths[:, None]


def normalise_valid(feats: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
    """(batch, n_feat, frames) features normalised per clip over its first `n_frames` frames (mean 0,
    std 1, as `Tensor.std` counts it); frames past those are 0."""
    valid = valid_frames(n_frames, feats.shape[-1])[:, None, :]
    count = (n_frames * feats.shape[1]).to(feats.dtype)[:, None, None]
    mean = feats.masked_fill(~valid, 0.0).sum(dim=(1, 2), keepdim=True) / count
    var = ((feats - mean).masked_fill(~valid, 0.0) ** 2).sum(dim=(1, 2), keepdim=True) / (count - 1).clamp(min=1)
    return ((feats - mean) / (var.sqrt() + 1e-5)).masked_fill(~valid, 0.0)


def frames(samples, hop: int = HOP):
    """Feature frames of clips of `samples` samples (a tensor or an int), `hop` samples apart
    (MelSpectrogram is centred)."""
    return samples // hop + 1


# -- text -------------------------------------------------------------------------
def normalize_text(text: str) -> tuple[str, int]:
    """Lower-case ASCII letters, apostrophe and single spaces; returns (text, characters dropped).

    Accents are folded (é -> e); digits and punctuation are dropped, never crash.
    """
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    kept = "".join(c if c in ALPHABET else (" " if c.isspace() or c in "-_" else "") for c in folded)
    dropped = sum(1 for c in folded if c not in ALPHABET and not c.isspace() and c not in "-_")
    dropped += len(text.lower()) - len(folded)  # characters with no ASCII form
    return " ".join(kept.split()), dropped


def encode(text: str) -> list[int]:
    return [ALPHABET.index(c) + 1 for c in text]


def decode(ids) -> str:
    return "".join(ALPHABET[i - 1] for i in ids if 0 < i <= len(ALPHABET))


def greedy_ctc(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path per utterance: argmax per frame, repeats collapsed, blanks removed.

    log_probs: (batch, frames, classes); lengths: valid frames per utterance.
    """
    best = log_probs.argmax(-1).cpu()
    out = []
    for row, n in zip(best, lengths.cpu().tolist()):
        row = row[:n]
        keep = torch.ones_like(row, dtype=torch.bool)
        keep[1:] = row[1:] != row[:-1]
        out.append([int(t) for t in row[keep & (row != blank)]])
    return out


def normalise(text: str) -> str:
    """Transcript text as both sides of WER and CER are scored: lower case, every run of whitespace one
    space, none at either end (a decoder's stray or doubled space is no word and no character error)."""
    return " ".join(text.lower().split())


def error_rates(refs: list[str], hyps: list[str]) -> dict[str, float]:
    """Corpus WER and CER of `hyps` against `refs` (`normalise`d), computed by jiwer (Levenshtein in C,
    rapidfuzz): total word / character edits over total reference words / characters. Spaces between
    words count as characters. Where every reference is empty, jiwer's rule: the count of insertions."""
    try:
        import jiwer
    except ImportError:
        raise MissingExtraError("WER and CER need jiwer: pip install 'dlbench[speech]'") from None
    if not refs:
        return {"wer": 0.0, "cer": 0.0}
    refs, hyps = [normalise(t) for t in refs], [normalise(t) for t in hyps]
    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps))}


# -- splits -----------------------------------------------------------------------
def pad_clips(clips: list[np.ndarray], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """int16 clips -> (padded (n, length) tensor, true lengths, clips padded up to MIN_SAMPLES).

    `length` fixes the width (clips cut or zero-padded to it); else the longest clip sets it.
    Empty and too-short clips are zero-padded to one analysis window instead of crashing the FFT.
    """
    lengths = np.array([max(len(c), MIN_SAMPLES) for c in clips], np.int64)
    short = int(sum(len(c) < MIN_SAMPLES for c in clips))
    width = length or int(lengths.max(initial=MIN_SAMPLES))
    out = np.zeros((len(clips), width), np.int16)
    for i, c in enumerate(clips):
        out[i, : min(len(c), width)] = c[:width]
    return torch.from_numpy(out), torch.from_numpy(np.minimum(lengths, width)), short


@dataclass
class Clips:
    """int16 clips back to back: clip i is `flat[offsets[i] : offsets[i] + lengths[i]]`.

    Clips shorter than one analysis window are stored zero-padded up to MIN_SAMPLES (as
    `pad_clips` pads them); `short` counts them. `flat` may be a read-only memory map.
    """

    flat: torch.Tensor
    offsets: torch.Tensor
    lengths: torch.Tensor
    short: int


def at_least_one_window(clip: np.ndarray) -> np.ndarray:
    """The clip, zero-padded to MIN_SAMPLES when shorter (an empty clip would crash the FFT)."""
    return np.pad(clip, (0, MIN_SAMPLES - len(clip))) if len(clip) < MIN_SAMPLES else clip


def pack_clips(clips: list[np.ndarray]) -> Clips:
    """In-memory int16 clips -> Clips (one copy into a flat tensor)."""
    stored = [at_least_one_window(c) for c in clips]
    lengths = torch.tensor([len(c) for c in stored], dtype=torch.long)
    flat = np.concatenate(stored).astype(np.int16, copy=False) if stored else np.zeros(0, np.int16)
    return Clips(torch.from_numpy(flat), torch.cumsum(lengths, 0) - lengths, lengths,
                 sum(len(c) < MIN_SAMPLES for c in clips))


def transcript_source(clips: Clips | list[np.ndarray], texts: list[str], info: dict) -> RaggedSource:
    """An ASR split: clips stored back to back (`RaggedSource`), transcripts as label ids padded with 0.

    Transcripts are normalised to the alphabet; a transcript left empty, or too long for
    its clip (more characters than feature frames / 4, the models' subsampling), is dropped
    and counted in `info` (its audio stays in `flat`, unused: no copy of the split is made).
    """
    if not isinstance(clips, Clips):
        clips = pack_clips(clips)
    keep, targets, dropped_chars, dropped = [], [], 0, {"empty_transcript": 0, "transcript_too_long": 0}
    for i, (text, n_frames) in enumerate(zip(texts, frames(clips.lengths).tolist())):
        norm, lost = normalize_text(text)
        dropped_chars += lost
        if not norm:
            dropped["empty_transcript"] += 1
        elif len(norm) > n_frames // 4:
            dropped["transcript_too_long"] += 1
        else:
            keep.append(i)
            targets.append(encode(norm))
    keep = torch.tensor(keep, dtype=torch.long)
    lengths = clips.lengths[keep]
    width = max((len(t) for t in targets), default=1)
    target = torch.zeros(len(targets), width, dtype=torch.long)
    for i, t in enumerate(targets):
        target[i, : len(t)] = torch.tensor(t)
    info = {**info, **dropped, "chars_outside_alphabet": dropped_chars, "short_clips_padded": clips.short,
            "audio_hours": round(float(lengths.sum()) / SAMPLE_RATE / 3600, 4)}
    return RaggedSource(clips.flat, clips.offsets[keep], lengths, "audio", info, target=target,
                        target_lengths=torch.tensor([len(t) for t in targets], dtype=torch.long))
