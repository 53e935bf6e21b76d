"""Hand-crafted sentiment baselines: TF-IDF + logistic regression, and the VADER lexicon.

Both read raw text, not WordPiece ids, so their splits travel through the
harness as UTF-8 bytes (`byte_source`): the same (ids, mask, y) batches as
the deep models', decoded back to the exact sentences (`texts`). They are
fitted and scored by `suite.training.estimator`; the task's own `evaluate` scores
their logits.

  tfidf_logreg   word 1-2-gram TF-IDF (sublinear tf) + logistic regression (C=4),
                 as `bench/sentiment_vs_trainer.py --baseline` and DATA.md measured it.
  vader_lexicon  VADER (Hutto & Gilbert 2014; PyPI vaderSentiment): a human-rated
                 lexicon with grammar rules, no training; positive when compound > 0.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from suite import Fitted, FittedClassifier, PaddedSource, SkipRun


def byte_source(dataset) -> PaddedSource:
    """A {text, label} dataset as UTF-8 byte ids (0-padded) with a mask: `texts` undoes it exactly."""
    encoded = [list(text.encode("utf-8")) or [32] for text in dataset["text"]]  # an empty text is one space
    lengths = torch.tensor([len(e) for e in encoded])
    ids = nn.utils.rnn.pad_sequence([torch.tensor(e, dtype=torch.long) for e in encoded], batch_first=True)
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    info = {"encoding": "utf-8 bytes (raw text for a hand-crafted model)", "bytes": int(lengths.sum())}
    return PaddedSource(lengths, ("ids", "mask"), info=info, ids=ids, mask=mask,
                        y=torch.tensor(list(dataset["label"]), dtype=torch.long))


def texts(ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
    """The sentences of a batch of `byte_source`."""
    lengths = mask.sum(1).tolist()
    return [bytes(row[:n]).decode("utf-8") for row, n in zip(ids.cpu().to(torch.uint8).tolist(), lengths)]


def tfidf_logreg(c: float = 4.0, max_iter: int = 2000) -> FittedClassifier:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return FittedClassifier(texts, make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                                 LogisticRegression(C=c, max_iter=max_iter)),
                            inputs=("ids", "mask"))


class VaderLexicon(Fitted):
    """The VADER rule: logits [0, 2 atanh(compound)], i.e. P(positive) = (1 + compound) / 2."""

    fits = False

    def __init__(self):
        super().__init__()
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError:
            raise SkipRun("vader_lexicon needs the vaderSentiment package: pip install 'dlbench[text]'") from None
        self.analyzer = SentimentIntensityAnalyzer()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        compound = [self.analyzer.polarity_scores(text)["compound"] for text in texts(ids, mask)]
        scores = torch.tensor([2 * math.atanh(max(-0.999, min(0.999, c))) for c in compound])
        return torch.stack([torch.zeros_like(scores), scores], 1)
