"""Keyword spotting: one-second clip -> one of 12 classes (the MLPerf Tiny / Speech Commands task).

The classes are the 10 Speech Commands keywords (yes, no, up, down, left, right,
on, off, stop, go), "unknown" (any other word) and "silence" (background noise).
Metric: accuracy. Features (log-mel; 10 MFCCs for DS-CNN, as in MLPerf Tiny) are
computed on the device by the model's front end (`tasks.speech.audio.LogMel`), 40 ms windows
every 20 ms; SpecAugment masks are applied in training only.

Datasets
  smoke  96 clips synthesised with eSpeak NG on first use (cached in the data folder).
  quick  `espeak_kws`: 8,400 clips synthesised with eSpeak NG (tasks/speech/corpus.py):
         8 English accents x 100 voice variants (80 train, 10 val, 10 test), 120-230 words
         a minute, pitch 20-80, random gain and position in the 1 s window, white / pink / brown noise at 5-30 dB SNR or
         none; split by voice (val / test voices are never heard in training): 6,000 / 1,200 /
         1,200 clips, balanced classes. Built in 46 s on 2 loaded cores on first use, then cached.
         Held out (reported at the stopping evaluation, never trained on; tasks/speech/heldout.py):
         `ood_flite` and `ood_piper`, 240 clips of the same 12 balanced classes each, by flite's
         voices rms / slt and by the neural Piper voice en_US-joe-medium. There is no real-speech
         set: none of the 10 keywords occurs in the LibriVox transcripts of pocketsphinx-testdata
         (the speech recognition task's `real_librivox`). `--set task.voices=espeak+flite` trains
         on flite's voices awb / kal16 as well (half the training clips; tasks/speech/corpus.py).
  full   Speech Commands v2 (Warden 2018) through torchaudio's SPEECHCOMMANDS listing
         (download when online), audio read with soundfile; validation_list.txt /
         testing_list.txt define the splits; unknown words subsampled and silence cut from
         _background_noise_ as in the TensorFlow / MLPerf Tiny recipe, each split's silence from its
         own part of every recording (train the first 80 %, val the next 10 %, test the last 10 %;
         tasks/speech/real.py), so no val or test silence clip shares a sample with a training one.

Models
  ds_cnn  (default) the MLPerf Tiny depthwise-separable CNN (64 channels, 4 DS blocks).
  resnet  a res8-style residual CNN (Tang & Lin 2018), pooled early so it is cheap.
  mfcc_logreg  hand-crafted: mean and std over time of 20 MFCCs and their deltas + logistic
          regression (tasks/speech/classical.py), fitted by suite/training/estimator.py.

Targets
  Runs stop on the validation split; the test split (and held-out sets) only report.
  quick  val/accuracy >= 0.80 on the validation voices: set from the reference convergence of ds_cnn
         (tasks/references/keyword_spotting.quick.ds_cnn.json, docs/methodology.md).
  full   val/accuracy >= 0.90 (MLPerf Tiny v1.0 KWS quality target).
  speed  no target: throughput on synthetic data at the full profile's shapes.
How the recipes came to be: docs/recipe-history.md.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from suite import (
    Budget, Model, ProfileSpec, Recipe, Target, Task, TensorSource, load_references,
    register_task, speed_profile,
)
from tasks.speech import SAMPLE_RATE
from tasks.speech.audio import LogMel, pad_clips
from tasks.speech.classical import mfcc_logreg
from tasks.speech import corpus, heldout
from tasks.speech.corpus import KWS_LABELS, CorpusConfig

N_CLASSES = len(KWS_LABELS)
# MLPerf Tiny's framing: 40 ms windows every 20 ms, 49-51 frames per second of audio.
KWS_FRAMES = {"hop": 320, "win": 640}


def _bn_relu(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class DSCNN(nn.Module):
    """MLPerf Tiny DS-CNN on 10 MFCCs x 51 frames: conv 10x4 stride 2, depthwise 3x3 + pointwise 1x1
    blocks, average pool, linear (about 23k parameters). `time_mask`: SpecAugment's widest time mask, in frames."""

    def __init__(self, width: int = 64, blocks: int = 4, n_mfcc: int = 10, dropout: float = 0.2, time_mask: int = 10):
        super().__init__()
        self.frontend = LogMel(40, time_mask=time_mask, n_mfcc=n_mfcc, **KWS_FRAMES)
        layers = [_bn_relu(nn.Conv2d(1, width, (10, 4), stride=2, padding=(5, 1), bias=False), width),
                  nn.Dropout(dropout)]
        for _ in range(blocks):
            layers += [_bn_relu(nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False), width),
                       _bn_relu(nn.Conv2d(width, width, 1, bias=False), width)]
        self.body = nn.Sequential(*layers, nn.Dropout(2 * dropout), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, N_CLASSES)

    def forward(self, audio: torch.Tensor, augment: bool = False) -> torch.Tensor:
        return self.head(self.body(self.frontend(audio, augment).unsqueeze(1)))


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = _bn_relu(nn.Conv2d(width, width, 3, padding=1, bias=False), width)
        self.conv2 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(self.conv1(x)))


class ResNetKWS(nn.Module):
    """res8-style (45 channels there, 32 here): conv 3x3, avg-pool (4, 3), residual blocks, avg-pool, linear."""

    def __init__(self, width: int = 32, blocks: int = 3, n_mels: int = 40):
        super().__init__()
        self.frontend = LogMel(n_mels, time_mask=10, **KWS_FRAMES)
        self.body = nn.Sequential(_bn_relu(nn.Conv2d(1, width, 3, padding=1, bias=False), width),
                                  nn.AvgPool2d((4, 3)), *[ResBlock(width) for _ in range(blocks)],
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, N_CLASSES)

    def forward(self, audio: torch.Tensor, augment: bool = False) -> torch.Tensor:
        return self.head(self.body(self.frontend(audio, augment).unsqueeze(1)))


def load_real(data_dir, split: str) -> tuple[list[np.ndarray], list[int], dict]:
    from tasks.speech.real import read_speech_commands, speech_commands_listing

    paths, labels = speech_commands_listing(data_dir, split)
    clips, kept, skipped = read_speech_commands(paths)
    # The listing (each clip's word/file name, each silence clip's noise window, the labels) names the split's
    # content: its hash keys the records' cells, so runs on another listing never share one.
    listing = [("/".join(Path(path).parts[-2:]) + ("#" + window if window else ""), label)
               for (path, _, window), label in zip((entry.partition("#") for entry in paths), labels)]
    fingerprint = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    return clips, [labels[i] for i in kept], {"source": "Speech Commands v2 (torchaudio listing)",
                                              "fingerprint": fingerprint, **skipped}


CORPUS_FOLDER = "speech_keyword_spotting"  # under the data folder
# A dataset is a declaration: its name (the profile's `dataset`) -> loader (data folder, split) -> clips, labels, info.
DATASETS = {"espeak_kws_smoke": corpus.loader(CORPUS_FOLDER, CorpusConfig("kws", (48, 24, 24)), "label"),
            "espeak_kws": corpus.loader(CORPUS_FOLDER, CorpusConfig("kws", (6000, 1200, 1200)), "label"),
            "speech_commands_v2": load_real}


REFERENCES = Path(__file__).parent / "references"
QUICK_TARGET = Target("val/accuracy", 0.80, True,
                      "reference convergence of ds_cnn over 10+ seeds (tasks/references/, docs/methodology.md)")


@register_task
class KeywordSpotting(Task):
    name = "keyword_spotting"
    version = 2  # 2: the validation voices decide; the test voices only report
    models = {"ds_cnn": DSCNN, "resnet": ResNetKWS,
              "mfcc_logreg": Model(mfcc_logreg, family="hand-crafted", estimator=True)}
    default_model = "ds_cnn"
    metrics = {"accuracy": True, "loss": False}
    options = (corpus.VOICES_OPTION,)
    profiles = {
        "smoke": ProfileSpec(
            expected_s=15, download_mb=0,
            dataset="espeak_kws_smoke",
            target=Target("val/accuracy", 0.5, True,
                          "smoke check only: a few steps exercise every code path; reaching it is not expected"),
            budget=Budget(max_steps=6, max_time_s=60, eval_every=48),
            recipes={"ds_cnn": Recipe(batch_size=16, model_kwargs={"width": 16, "blocks": 1}),
                     "resnet": Recipe(batch_size=16, model_kwargs={"width": 8, "blocks": 1})},
        ),
        "quick": ProfileSpec(
            expected_s=3, download_mb=0,
            dataset="espeak_kws",
            target=QUICK_TARGET,
            budget=Budget(max_epochs=10, max_time_s=300, eval_every=600),
            eval_splits=("val", "test") + heldout.SPLITS["kws"],
            recipes={
                # A 3-epoch schedule (the learning rate decays to 0 where the run ends), batch 50 at lr 1e-2,
                # light regularisation (no dropout, time masks of up to 3 frames).
                "ds_cnn": Recipe(batch_size=50, eval_batch_size=400, lr=1e-2, weight_decay=0.01,
                                 model_kwargs={"dropout": 0.0, "time_mask": 3}, cpu_channels_last=True,
                                 budget=Budget(max_epochs=3, max_time_s=300)),
                "resnet": Recipe(batch_size=100, eval_batch_size=400, lr=3e-3, weight_decay=0.01)},
            references=load_references(REFERENCES, "keyword_spotting", "quick"),
        ),
        "full": ProfileSpec(
            expected_s=None, download_mb=2300,
            dataset="speech_commands_v2",
            target=Target("val/accuracy", 0.90, True,
                          "MLPerf Tiny v1.0 KWS quality target, DS-CNN on 12-class Speech Commands v2"),
            budget=Budget(max_epochs=36, max_time_s=3600, eval_every=36_000),
            recipes={"ds_cnn": Recipe(batch_size=100, eval_batch_size=1000, lr=5e-3, weight_decay=0.01),
                     # cuda_tf32: bench/gpu_precision.py on an H200 (docs/results-h200.md): fp32 1.18x bf16.
                     "resnet": Recipe(batch_size=100, eval_batch_size=1000, lr=5e-3, weight_decay=0.01,
                                      cuda_tf32=True)},
        ),
    }
    profiles["speed"] = speed_profile(profiles["full"])

    def synthetic_batch(self, batch_size: int, device: torch.device, generator: torch.Generator) -> dict:
        """One-second int16 clips at 16 kHz (Speech Commands), 12 classes."""
        audio = torch.randn(batch_size, SAMPLE_RATE, device=device, generator=generator) * 3000
        return {"audio": audio.to(torch.int16),
                "y": torch.randint(0, N_CLASSES, (batch_size,), device=device, generator=generator)}

    def load(self, split: str) -> TensorSource:
        if split in heldout.SPLITS["kws"]:
            clips, labels, info = heldout.load_set(self.data_dir / CORPUS_FOLDER, "kws", split, "label")
        else:
            load = corpus.with_voices(DATASETS[self.spec.dataset], self.option("voices"), self.spec.dataset)
            clips, labels, info = load(self.data_dir, split)
        audio, lengths, short = pad_clips(clips, SAMPLE_RATE)
        info = {**info, "short_clips_padded": short, "mean_clip_s": 1.0}
        return TensorSource(info=info, audio=audio, y=torch.tensor(labels, dtype=torch.long))

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(batch["audio"], augment=True), batch["y"])

    def batch_work(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        audio = batch["audio"]
        return {"audio_s": audio.shape[0] * audio.shape[-1] / SAMPLE_RATE}  # fixed-length clips

    def evaluate(self, model: nn.Module, source: TensorSource) -> dict[str, float]:
        correct = torch.zeros((), device=next(model.parameters()).device)
        loss_sum = torch.zeros((), device=correct.device)
        for batch in source.batches(self.spec.recipe.eval_batch_size):
            logits = model(batch["audio"]).float()
            correct += (logits.argmax(1) == batch["y"]).sum()
            loss_sum += F.cross_entropy(logits, batch["y"], reduction="sum")
        n = max(1, len(source))
        return {"accuracy": correct.item() / n, "loss": loss_sum.item() / n}
