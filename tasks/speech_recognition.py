"""Speech recognition: audio -> characters with CTC; how fast a machine trains to a word error rate.

Models emit per-frame character log-probabilities (blank + space + a-z + apostrophe),
trained with CTC (`torch.nn.CTCLoss`) and decoded greedily (best path, repeats
collapsed, blanks removed). Metrics: WER and CER, corpus level (total word / character
edits over total reference words / characters, Levenshtein), computed by jiwer
(`tasks.speech.audio.error_rates`). Lower is better.
Text normalisation, the same for reference and hypothesis before scoring: lower case,
every run of whitespace (spaces, tabs, newlines) one space, none at either end; letters,
apostrophes and the single spaces between words are scored as they are (the spaces count
as characters in CER). References are already in the model's alphabet (a-z, apostrophe,
space: accents folded to ASCII, other characters dropped when the corpus is read), so a
doubled or stray space from the decoder is no error, and a wrong letter always is.
Where every reference of a split is empty, WER and CER are jiwer's count of insertions.
In evaluation a clip's outputs never depend on the clips batched with it
(tests/test_speech_batching.py): its features (log-mel; MFCCs for mfcc_linear_ctc) are
normalised over its own frames (`clip_norm`; before issue #16 the padded batch was normalised
as one) and are 0 past its end, the subsampling convs zero the frames past its end after each
conv, the GRU runs packed over its own frames, and each Conformer layer's depthwise conv reads
zeros past its end (task version 4).
In the smoke and quick profiles the features are computed once per split when it loads
(tasks/speech/featcache.py; `--set task.feature_cache=off` computes them on every step), in full
on every step by the model's front end, on the device. SpecAugment masks are drawn on every
training step, never in evaluation; batches hold clips of similar length (`RaggedSource`).
Throughput: samples/s, and seconds of audio per second of training
(`throughput.extra["audio_s/s"]` in the record; padding not counted).

Datasets
  smoke  48 utterances synthesised with eSpeak NG on first use (cached in the data folder).
  quick  `espeak_asr`: utterances of a seeded command grammar (~120 words: digits,
         rooms, devices, names, cities...), synthesised with eSpeak NG with the same
         variety as the keyword corpus (8 accents, 100 voice variants, rate, pitch, gain,
         noise at 5-30 dB SNR) and split by voice (tasks/speech/corpus.py): 4,000 / 400 / 400
         utterances, 1.8 h of training audio, mean 1.65 s; built in ~100 s on 2 loaded cores.
         Held out (reported at the stopping evaluation, never trained on; tasks/speech/heldout.py):
         `ood_flite` and `ood_piper`, 160 utterances of the same grammar each, by flite's voices
         rms / slt and by the neural Piper voice en_US-joe-medium, and `real_librivox`, the five
         LibriVox recordings (one reader, 25 s) of Debian's pocketsphinx-testdata with their
         transcripts: read English prose, mostly words outside the grammar, so its WER is near 1
         and its CER is the figure that moves. `--set task.voices=espeak+flite` trains on flite's
         voices awb / kal16 as well (half the training clips; tasks/speech/corpus.py).
  full   LibriSpeech (Panayotov et al. 2015) train-clean-100 / dev-clean / test-clean via
         torchaudio's LIBRISPEECH listing (download when online), decoded once with soundfile
         into DATA/librispeech_cache/<subset>/ and memory-mapped by later runs
         (tasks/speech/real.py). Memory: int16 at 16 kHz is 32,000 bytes per second of audio,
         115 MB per hour: train-clean-100 (100.6 h) is an 11.6 GB file, dev-clean and test-clean
         (5.4 h each) 0.6 GB each, with no padding. Host RAM holds only the pages batches touch
         (page cache, reclaimable); a GPU gets the split in one copy when it takes under a
         quarter of its free memory (the harness's rule), else each batch is gathered on the host.

Models
  ctc_bigru      (default) 2 strided convs (4x time subsampling) + bidirectional GRU + linear,
                 DeepSpeech-2-like.
  conformer_ctc  the same subsampling + torchaudio.models.Conformer + linear CTC head.
  mfcc_linear_ctc  shallow: one linear layer from a 9-frame window of 13 MFCCs to characters, CTC,
                 trained by the ordinary loop (tasks/speech/classical.py): no hidden layer at all.

Targets
  Runs stop on the validation split; the test split (and held-out sets) only report.
  quick  val/wer <= 0.40 on the validation voices: set from the reference convergence of ctc_bigru
         (tasks/references/speech_recognition.quick.ctc_bigru.json, docs/methodology.md).
  full   val/wer <= 0.15 on dev-clean (AlgoPerf's LibriSpeech targets, loosened for characters, CTC, greedy decoding).
  speed  no target: throughput on synthetic data at the full profile's shapes.
How the recipes came to be: docs/recipe-history.md.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from suite import (
    Budget, Model, ProfileSpec, RaggedSource, Recipe, SkipRun, Target, Task, TaskOption, load_references,
    register_task, speed_profile,
)
from suite.training.graphs import packed_rnn
from tasks.speech import SAMPLE_RATE
from tasks.speech.audio import ALPHABET, LogMel, decode, error_rates, frames, greedy_ctc, \
    transcript_source, valid_frames
from tasks.speech import corpus, heldout
from tasks.speech.classical import MFCCLinearCTC, mfcc_frontend
from tasks.speech.corpus import CorpusConfig
from tasks.speech.featcache import CACHE_LIMIT_BYTES, FeatureSource, cache_features, feature_bytes
from tasks.speech.real import librispeech_clips

N_CLASSES = len(ALPHABET) + 1  # + CTC blank
N_MELS = 40  # the deep models' default log-mel bands


CORPUS_FOLDER = "speech_speech_recognition"  # under the data folder
# A dataset is a declaration: its name (the profile's `dataset`) -> loader (data folder, split) -> clips, texts, info.
DATASETS = {"espeak_asr_smoke": corpus.loader(CORPUS_FOLDER, CorpusConfig("asr", (32, 8, 8)), "text"),
            "espeak_asr": corpus.loader(CORPUS_FOLDER, CorpusConfig("asr", (4000, 400, 400)), "text"),
            "librispeech_100h": librispeech_clips}


@torch.compiler.disable
def one_channel(feats: torch.Tensor) -> torch.Tensor:
    """(batch, mels, frames) features as a (batch, 1, mels, frames) view, made outside any compiled graph.

    The first conv's backward reads this view. Made inside a graph compiled with dynamic shapes, it is
    a view the graph saves for the backward, and inductor fails to order its symbolic strides
    ("cannot determine truth value of Relational: 1 < s0", pytorch/pytorch#185510); made here, it
    enters the graph as an input. In eager it is the same view: the same numbers.
    """
    return feats.unsqueeze(1)


class Subsample(nn.Module):
    """Two 3x3 stride-2 convs over (mel, time): 4x fewer frames, then a projection to `dim`.

    After each conv the frames past each clip's end are zeroed: the next conv's kernel reaches one
    frame past a clip's end, which holds the zeros of its own padding when the clip is alone, and
    the conv's bias and activation there otherwise (input features are already 0 past the end).
    """

    def __init__(self, n_mels: int, channels: int, dim: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, channels, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.GELU())
        self.proj = nn.Linear(channels * ((n_mels + 3) // 4), dim)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = one_channel(feats)  # (batch, 1, mels, frames)
        for conv, act in zip(self.conv[0::2], self.conv[1::2]):
            x = act(conv(x))  # masked in place below: GELU's backward reads its input, not this output
            lengths = (lengths - 1) // 2 + 1
            x.masked_fill_(~valid_frames(lengths, x.shape[-1])[:, None, None, :], 0.0)
        x = self.proj(x.permute(0, 3, 1, 2).flatten(2))  # (batch, frames/4, dim)
        return x, lengths


class CTCBiGRU(nn.Module):
    """Subsampling, a bidirectional GRU run over each clip's own frames (`packed_rnn`) and a linear head."""

    def __init__(self, hidden: int = 192, layers: int = 2, channels: int = 32, n_mels: int = N_MELS,
                 dropout: float = 0.1, freq_mask: int = 8, time_mask: int = 15, masks: int = 2,
                 clip_norm: bool = True):
        super().__init__()
        self.frontend = LogMel(n_mels, freq_mask=freq_mask, time_mask=time_mask, masks=masks)
        self.clip_norm = clip_norm
        self.subsample = Subsample(n_mels, channels, hidden)
        self.rnn = nn.GRU(hidden, hidden, layers, batch_first=True, bidirectional=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(2 * hidden, N_CLASSES)

    def forward(self, audio, lengths, augment: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        x, out_lengths = self.subsample(self.frontend(audio, augment, lengths if self.clip_norm else None),
                                        frames(lengths))
        out_lengths = out_lengths.clamp(max=x.shape[1])
        return self.head(packed_rnn(self.rnn, x, out_lengths)).log_softmax(-1), out_lengths


class ValidFramesConv(nn.Module):
    """A conv over time that reads zeros past each clip's end: `valid` ((batch, 1, frames), 1 on a
    clip's frames) is set by the model around each encoder call, None otherwise (the conv as it is)."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv
        self.valid: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x if self.valid is None else x * self.valid)


class ConformerCTC(nn.Module):
    """Subsampling, torchaudio's Conformer and a linear CTC head.

    The Conformer masks padded frames out of attention, but the depthwise conv of each layer's
    convolution module spans neighbouring frames, and what reaches it from padded frames is not 0
    (the pointwise conv before it has a bias): so that conv is wrapped to read zeros past each
    clip's end, as a clip alone reads its own zero padding (`ValidFramesConv`).
    """

    def __init__(self, dim: int = 144, layers: int = 4, heads: int = 4, ffn: int = 576, kernel: int = 15,
                 channels: int = 32, n_mels: int = N_MELS, dropout: float = 0.1, clip_norm: bool = True):
        super().__init__()
        try:  # the one torchaudio piece the speech tasks still use outside the full profile's listings
            from torchaudio.models import Conformer
        except ImportError:
            raise SkipRun("conformer_ctc needs torchaudio's Conformer: pip install 'dlbench[speech]'") from None

        self.frontend = LogMel(n_mels, time_mask=15)
        self.clip_norm = clip_norm
        self.subsample = Subsample(n_mels, channels, dim)
        self.encoder = Conformer(dim, heads, ffn, layers, kernel, dropout=dropout)
        self.time_convs = []  # plain list: the wrappers are already the encoder's submodules
        for layer in self.encoder.conformer_layers:
            depthwise = ValidFramesConv(layer.conv_module.sequential[2])  # after pointwise conv and GLU
            layer.conv_module.sequential[2] = depthwise
            self.time_convs.append(depthwise)
        self.head = nn.Linear(dim, N_CLASSES)

    def forward(self, audio, lengths, augment: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        x, out_lengths = self.subsample(self.frontend(audio, augment, lengths if self.clip_norm else None),
                                        frames(lengths))
        out_lengths = out_lengths.clamp(max=x.shape[1])
        valid = valid_frames(out_lengths, x.shape[1])[:, None, :].to(x.dtype)
        for conv in self.time_convs:
            conv.valid = valid
        try:
            x, _ = self.encoder(x, out_lengths)
        finally:
            for conv in self.time_convs:
                conv.valid = None
        return self.head(x).log_softmax(-1), out_lengths


# Models whose front end is fed with clip lengths, so its features can be cached per split: the front end
# each builds from its recipe's model_kwargs (only the features are cached; masks are drawn per step).
CACHEABLE_FRONTENDS = {
    "ctc_bigru": lambda kw: LogMel(kw.get("n_mels", N_MELS)),
    "conformer_ctc": lambda kw: LogMel(kw.get("n_mels", N_MELS)),
    "mfcc_linear_ctc": lambda kw: mfcc_frontend(**{k: kw[k] for k in ("n_mfcc", "n_mels") if k in kw}),
}
# Profiles whose splits are small synthesised corpora held in memory (quick's training features: 104 MB);
# full's LibriSpeech is memory-mapped and large (train-clean-100 at 80 bands: 11.6 GB of features).
CACHED_PROFILES = ("smoke", "quick")


REFERENCES = Path(__file__).parent / "references"
QUICK_TARGET = Target("val/wer", 0.40, False,
                      "reference convergence of ctc_bigru over 10+ seeds (tasks/references/, docs/methodology.md)")


@register_task
class SpeechRecognition(Task):
    name = "speech_recognition"
    # 4: a clip's outputs do not depend on the clips batched with it (packed GRU, masked convolutions, MFCCs
    # normalised per clip); 3: the validation voices decide, the test voices only report
    version = 4
    models = {"ctc_bigru": CTCBiGRU, "conformer_ctc": ConformerCTC,
              "mfcc_linear_ctc": Model(MFCCLinearCTC, family="shallow")}
    default_model = "ctc_bigru"
    metrics = {"wer": False, "cer": False, "loss": False}
    options = (TaskOption("feature_cache", str, "auto", "auto: the models' features (log-mel, or MFCCs) are computed "
                          "once per split in the smoke and quick profiles (at most 256 MiB of them), on every step in full "
                          "(LibriSpeech, memory-mapped); off: always on every step", choices=("auto", "off")),
               corpus.VOICES_OPTION)
    profiles = {
        "smoke": ProfileSpec(
            expected_s=15, download_mb=0,
            dataset="espeak_asr_smoke",
            target=Target("val/wer", 0.99, False,
                          "smoke check only: a few steps exercise every code path; reaching it is not expected"),
            budget=Budget(max_steps=4, max_time_s=60, eval_every=16),
            recipes={"ctc_bigru": Recipe(batch_size=8, eval_batch_size=16,
                                         model_kwargs={"hidden": 32, "layers": 1, "channels": 4}),
                     "conformer_ctc": Recipe(batch_size=8, eval_batch_size=16, model_kwargs={
                         "dim": 32, "layers": 1, "heads": 2, "ffn": 64, "channels": 4})},
        ),
        "quick": ProfileSpec(
            expected_s=48, download_mb=0,
            dataset="espeak_asr",
            target=QUICK_TARGET,
            budget=Budget(max_epochs=8, max_time_s=420, eval_every=1_600),
            eval_splits=("val", "test") + heldout.SPLITS["asr"],
            recipes={"ctc_bigru": Recipe(batch_size=32, eval_batch_size=100, lr=4e-3, weight_decay=0.01,
                                         grad_clip=1.0, model_kwargs={"hidden": 160, "layers": 2, "dropout": 0.0},
                                         budget=Budget(max_epochs=6, max_time_s=420)),
                     "conformer_ctc": Recipe(batch_size=32, eval_batch_size=100, lr=2e-3, weight_decay=0.01,
                                             grad_clip=1.0, model_kwargs={"dim": 144, "layers": 4},
                                             budget=Budget(max_epochs=12, max_time_s=600)),
                     # One linear layer learns fast or not at all: a higher rate than the deep models' (untuned).
                     "mfcc_linear_ctc": Recipe(batch_size=32, eval_batch_size=100, lr=1e-2, weight_decay=0.0,
                                               grad_clip=1.0)},
            references=load_references(REFERENCES, "speech_recognition", "quick"),
        ),
        "full": ProfileSpec(
            expected_s=None, download_mb=7000,
            dataset="librispeech_100h",
            target=Target("val/wer", 0.15, False,
                          "AlgoPerf LibriSpeech workloads (mlcommons/algorithmic-efficiency): DeepSpeech test-clean "
                          "WER target 0.068, Conformer validation 0.084, both trained on 960 h; icefall's Conformer "
                          "transducer trained on train-clean-100 alone: 0.063 (word pieces, 57 epochs); loosened to "
                          "0.15 for characters, CTC and greedy decoding without a language model"),
            budget=Budget(max_epochs=50, max_time_s=6 * 3600, eval_every=28_539),
            recipes={"ctc_bigru": Recipe(batch_size=32, eval_batch_size=64, lr=1e-3, weight_decay=0.01,
                                         grad_clip=1.0, model_kwargs={"hidden": 512, "layers": 4, "n_mels": 80}),
                     "conformer_ctc": Recipe(batch_size=32, eval_batch_size=64, lr=1e-3, weight_decay=0.01,
                                             grad_clip=1.0, model_kwargs={"dim": 256, "layers": 12, "heads": 4,
                                                                          "ffn": 1024, "kernel": 31, "n_mels": 80})},
        ),
    }
    profiles["speed"] = speed_profile(profiles["full"])

    def synthetic_batch(self, batch_size: int, device: torch.device, generator: torch.Generator) -> dict:
        """Random int16 audio with LibriSpeech train-clean-100's length spread, as length-bucketed batches hold it.

        The batch's longest clip is drawn from about that corpus's utterance lengths (mean 12.7 s,
        1.3-24.5 s: a normal of mean 12.7 s and sd 3.5 s, cut to that range); its clips are 90-100 %
        of it, as the length-sorted windows of `RaggedSource` make them. Transcripts: 15
        characters per second of audio (LibriSpeech reads at about 2.7 words/s).
        """
        def rand(*shape):
            return torch.rand(shape, device=device, generator=generator)

        longest_s = (12.7 + 3.5 * torch.randn((), device=device, generator=generator)).clamp(1.3, 24.5)
        longest = int(longest_s * SAMPLE_RATE)  # one sync, when the batch is made (outside timed steps)
        lengths = (longest * (0.9 + 0.1 * rand(batch_size))).long().clamp(max=longest)
        lengths[0] = longest
        steps = torch.arange(longest, device=device)
        audio = (torch.randn(batch_size, longest, device=device, generator=generator) * 3000).to(torch.int16)
        audio = audio.masked_fill(steps >= lengths[:, None], 0)
        target_lengths = (lengths.float() / SAMPLE_RATE * 15).long().clamp(min=1)
        width = int(longest / SAMPLE_RATE * 15) + 1
        target = torch.randint(1, N_CLASSES, (batch_size, width), device=device, generator=generator)
        target = target.masked_fill(torch.arange(width, device=device) >= target_lengths[:, None], 0)
        return {"lengths": lengths, "audio": audio, "target": target, "target_lengths": target_lengths}

    def load(self, split: str) -> RaggedSource | FeatureSource:
        if split in heldout.SPLITS["asr"]:
            clips, texts, info = heldout.load_set(self.data_dir / CORPUS_FOLDER, "asr", split, "text")
        else:
            load = corpus.with_voices(DATASETS[self.spec.dataset], self.option("voices"), self.spec.dataset)
            clips, texts, info = load(self.data_dir, split)
        source = transcript_source(clips, texts, info)
        n = max(1, len(source))
        source.info["mean_clip_s"] = round(float(source.tensors["lengths"].sum()) / n / SAMPLE_RATE, 3)
        frontend = self._cacheable_frontend()
        if frontend is not None and feature_bytes(source, frontend) <= CACHE_LIMIT_BYTES:
            return cache_features(source, frontend)
        return source

    def _cacheable_frontend(self) -> LogMel | None:
        """The deterministic part of the model's front end, when its features may be computed once per split."""
        kwargs = self.spec.recipe.model_kwargs
        if (self.option("feature_cache") == "off" or self.spec.model not in CACHEABLE_FRONTENDS
                or self.spec.profile not in CACHED_PROFILES or not kwargs.get("clip_norm", True)):
            return None
        return CACHEABLE_FRONTENDS[self.spec.model](kwargs)

    @staticmethod
    def _inputs(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["feats"] if "feats" in batch else batch["audio"]

    def _ctc(self, log_probs, out_lengths, batch, reduction: str = "mean") -> torch.Tensor:
        # CTC in float32 (bf16 log-probs lose the small path probabilities); (frames, batch, classes).
        return F.ctc_loss(log_probs.float().transpose(0, 1), batch["target"], out_lengths, batch["target_lengths"],
                          blank=0, reduction=reduction, zero_infinity=True)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        log_probs, out_lengths = model(self._inputs(batch), batch["lengths"], augment=True)
        return self._ctc(log_probs, out_lengths, batch)

    def batch_work(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"audio_s": batch["lengths"].sum() / SAMPLE_RATE}

    def evaluate(self, model: nn.Module, source: RaggedSource) -> dict[str, float]:
        refs, hyps, loss_sum = [], [], 0.0
        for batch in source.batches(self.spec.recipe.eval_batch_size):
            log_probs, out_lengths = model(self._inputs(batch), batch["lengths"])
            loss_sum += float(self._ctc(log_probs, out_lengths, batch, reduction="sum"))
            hyps += [decode(ids) for ids in greedy_ctc(log_probs, out_lengths)]
            refs += [decode(t[:n].tolist()) for t, n in zip(batch["target"].cpu(), batch["target_lengths"].cpu())]
        return {**error_rates(refs, hyps), "loss": loss_sum / max(1, len(source))}
