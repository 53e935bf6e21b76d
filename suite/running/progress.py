"""Progress bars for the long phases before training: corpus synthesis, fetches, downloads, decoding.

One place sets how they look (tqdm on stderr, refreshed at most once a second,
the finished bar left as one line), so every task's bars read alike. The
libraries that download for the tasks (torchvision, torchaudio, `datasets`)
show their own tqdm bars.
"""
from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, desc: str, total: int | None = None, unit: str = "it") -> tqdm:
    """A tqdm bar over `iterable` (or one to `.update(n)` by hand, with `total`)."""
    return tqdm(iterable, desc=desc, total=total, unit=unit, mininterval=1.0, file=sys.stderr, dynamic_ncols=True)
