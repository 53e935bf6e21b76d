"""Batch sources over tensors, and the data folder.

`TensorSource` keeps a split as a dict of equal-length tensors; when it fits
on the device the harness moves it there once and batches are cut by
indexing on the device (the airbench habit: no loader processes, no
per-step host copies). Variable-length data (text, audio) uses
`PaddedSource`, which sorts by length inside a shuffled window and trims
each batch to its longest item, so no compute is spent on padding (and, for
a classifier, can give every batch the classes in even shares).
`RaggedSource` draws the same batches from items stored back to back in
one flat tensor, so no memory is spent on padding either (long audio).
Each source selects items into a source of its own type (`select`), so a
training fraction (`training_fraction`) keeps the split's batching.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch

from suite.errors import ConfigError, DataError, DlbenchError, SplitUnavailable
from suite.taskapi.task import BatchSource

DEFAULT_DATA_DIR = Path("~/.cache/dlbench")


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data folder, absolute with links resolved (records keep where their data came from, whatever
    the working folder): `--data-dir`, else `$DLBENCH_DATA`, else ~/.cache/dlbench."""
    chosen = explicit or os.environ.get("DLBENCH_DATA") or DEFAULT_DATA_DIR
    path = Path(chosen).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError("data_dir", str(path), "is a file; point --data-dir (or DLBENCH_DATA) at a folder")
    return path


def check_data_dir(folder: Path) -> None:
    """DlbenchError (one line) unless `folder` can be listed and written (made if missing): loaders build
    and cache datasets there, so a folder they cannot use stops the suite before any run, not in each."""
    where = "--data-dir or DLBENCH_DATA (the default is under HOME)"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.listdir(folder)
        fd, probe = tempfile.mkstemp(prefix=".dlbench-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DlbenchError(f"data folder {folder} is not usable ({exc.strerror or type(exc).__name__}): "
                           f"give a readable, writable folder with {where}") from None


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (data-folder manifests use it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def move_to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move a batch to `device` (no-op for tensors already there)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _place(t: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    t = t.to(device)
    if channels_last and t.dim() == 4 and t.is_floating_point():
        # Indexing keeps the NHWC layout, so batches cut from it stay NHWC.
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def _shuffled_index(n: int, shuffle: bool, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    if shuffle:
        # The permutation is drawn on the CPU so a seed gives the same order on every device;
        # copied without blocking (from pageable memory the copy is staged at once: safe).
        return torch.randperm(n, generator=generator).to(device, non_blocking=True)
    return torch.arange(n, device=device)


def rank_slice(idx: torch.Tensor, shard: tuple[int, int]) -> torch.Tensor | None:
    """This rank's slice of one global batch (`shard` = (rank, world)), the batch first cut to a multiple of
    `world`: every rank trains as many items per step and counts the same samples (slice x world), so all
    reach each evaluation point at the same step (one evaluating while another waits in the gradient
    all-reduce deadlocks the run; DistributedSampler evens its shards too, by padding). None for a
    batch smaller than `world`: every rank skips it alike."""
    rank, world = shard
    if world <= 1:
        return idx
    even = len(idx) - len(idx) % world
    return idx[:even][rank::world] if even else None


def _cut(index: torch.Tensor, batch_size: int, drop_last: bool, shard: tuple[int, int]) -> Iterator[torch.Tensor]:
    for start in range(0, len(index), batch_size):
        idx = index[start : start + batch_size]
        if drop_last and len(idx) < batch_size:
            return
        mine = rank_slice(idx, shard)
        if mine is not None:
            yield mine


def length_batches(lengths: torch.Tensor, batch_size: int, window: int, *, shuffle: bool,
                   generator: torch.Generator | None, drop_last: bool, shard: tuple[int, int],
                   classes: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, int]]:
    """(CPU index, longest length) of each batch of variable-length items, `lengths` on the CPU.

    Shuffled: items sorted by length inside windows of `window` batches of a random
    permutation, then the batches shuffled, so each batch holds similar lengths. With
    `classes` (a class label per item, on the CPU) each batch also holds the classes in the
    window's proportions (`balanced_order`).
    Evaluation: all items length-sorted (cheaper; the order does not change metrics).
    """
    if shuffle:
        order = torch.randperm(len(lengths), generator=generator)
        chunk = batch_size * window
        pieces = []
        for start in range(0, len(order), chunk):
            part = order[start : start + chunk]
            if classes is None:
                pieces.append(part[torch.argsort(lengths[part], descending=True, stable=True)])
            else:
                pieces.append(part[balanced_order(lengths[part], classes[part])])
        order = torch.cat(pieces)
        groups = list(order.split(batch_size))
        if drop_last and len(groups[-1]) < batch_size:
            groups = groups[:-1]
        groups = [groups[i] for i in torch.randperm(len(groups), generator=generator).tolist()]
    else:
        order = torch.argsort(lengths, descending=True, stable=True)
        groups = list(order.split(batch_size))
    for idx in groups:
        idx = rank_slice(idx, shard)
        if idx is not None:
            yield idx, int(lengths[idx].max())


def balanced_order(lengths: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """An order of items, longest first, in which every run of consecutive items holds each class in
    its overall share (to within one item).

    Each class is sorted by length on its own and every item keyed by its quantile in its class
    ((rank + 0.5) / class size); the order sorts the keys. Cut into batches, each batch holds
    similar lengths and, for a classifier, a label mix that does not swing from batch to batch:
    batches of 32 drawn at random hold 50 +- 9 % of one class of two, and a model trained at a
    fine-tuning learning rate tracks that mix in its decision threshold (docs/recipe-history.md, sentiment).
    """
    key = torch.empty(len(lengths), dtype=torch.float64)
    for c in torch.unique(classes):
        members = (classes == c).nonzero().squeeze(1)
        ranked = members[torch.argsort(lengths[members], descending=True, stable=True)]
        key[ranked] = (torch.arange(len(ranked), dtype=torch.float64) + 0.5) / len(ranked)
    return torch.argsort(key, stable=True)


def pack(flat: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The slices `flat[start : start + length]` along dim 0 (host `starts` and `lengths`), copied back to back."""
    pieces = [flat[start : start + length] for start, length in zip(starts.tolist(), lengths.tolist())]
    return torch.cat(pieces) if pieces else flat[:0].clone()


def load_eval_splits(task: Any, splits: Iterable[str]) -> tuple[dict[str, BatchSource], dict[str, str]]:
    """Each eval split of `task` loaded (`task.load(split)`), and the ones that cannot be built here.

    Returns (sources, skipped): skipped maps a split to why it is missing and how to install what it
    needs (`SplitUnavailable`); the record keeps it as `data_info[split] = {"skipped": reason}`. The split
    the target is measured on cannot be skipped: without it the run cannot stop, so that is a DataError.
    """
    target = task.spec.target.metric.split("/", 1)[0] if task.spec.target else None
    sources: dict[str, BatchSource] = {}
    skipped: dict[str, str] = {}
    for split in splits:
        try:
            sources[split] = task.load(split)
        except SplitUnavailable as exc:
            if split == target:
                raise DataError(f"split {split!r} holds the target metric and cannot be built: {exc}") from None
            skipped[split] = str(exc)
    return sources, skipped


def training_fraction(source: BatchSource, fraction: float | None, seed: int) -> BatchSource:
    """A seeded random `fraction` of `source`'s examples (`--set data.fraction`); the source itself when None.

    The same seed and fraction pick the same examples, kept in their order; the result is
    `source.select(...)`, so it batches as `source` does (length buckets stay buckets).
    `info` gains "fraction"."""
    if fraction is None or fraction == 1.0:
        return source
    keep = max(1, round(len(source) * fraction))
    index = torch.randperm(len(source), generator=torch.Generator().manual_seed(seed))[:keep].sort().values
    cut = source.select(index)
    cut.info = {**source.info, "fraction": fraction}
    return cut


class TensorSource(BatchSource):
    """A split held as equal-length tensors, e.g. `TensorSource(x=images, y=labels)`."""

    fixed_shapes = True

    def __init__(self, info: dict[str, Any] | None = None, **tensors: torch.Tensor):
        if not tensors:
            raise ValueError("TensorSource needs at least one tensor")
        lengths = {k: len(v) for k, v in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"TensorSource tensors differ in length: {lengths}")
        self.tensors = tensors
        self.info = dict(info or {})

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    @property
    def device(self) -> torch.device:
        return next(iter(self.tensors.values())).device

    def nbytes(self) -> int:
        return sum(t.element_size() * t.numel() for t in self.tensors.values())

    def to(self, device: torch.device, channels_last: bool = False) -> "TensorSource":
        return TensorSource(self.info, **{k: _place(v, device, channels_last) for k, v in self.tensors.items()})

    def select(self, index: torch.Tensor) -> "TensorSource":
        index = index.to(self.device)
        return TensorSource(self.info, **{k: v[index] for k, v in self.tensors.items()})

    def batches(self, batch_size, *, shuffle=False, generator=None, drop_last=False, shard=(0, 1)):
        index = _shuffled_index(len(self), shuffle, generator, self.device)
        for idx in _cut(index, batch_size, drop_last, shard):
            yield {k: v[idx] for k, v in self.tensors.items()}


class PaddedSource(TensorSource):
    """Variable-length items padded into tensors, with a `lengths` tensor.

    `padded` names the tensors whose dim 1 is the length axis (e.g. token
    ids and attention mask, or waveforms). Shuffled batches are drawn by
    sorting items by length inside windows of `window` batches, then
    shuffling the batches: each batch holds similar lengths and is trimmed
    to its longest item. `balance` names a tensor of class labels: shuffled
    batches then also hold the classes in even shares (`balanced_order`).
    """

    fixed_shapes = False  # each batch is trimmed to its longest item

    def __init__(self, lengths: torch.Tensor, padded: tuple[str, ...], info=None, window: int = 50,
                 balance: str | None = None, **tensors):
        super().__init__(info, lengths=lengths, **tensors)
        self.padded = tuple(padded)
        self.window = window
        self.balance = balance
        # Batches are planned on host copies of the lengths (and classes), made once (not a device sync per epoch).
        self._host_lengths = lengths if lengths.device.type == "cpu" else None
        self._host_classes: torch.Tensor | None = None
        missing = [k for k in (*self.padded, *([balance] if balance else [])) if k not in tensors]
        if missing:
            raise ValueError(f"PaddedSource: padded or balance tensors {missing} were not given")

    def host_lengths(self) -> torch.Tensor:
        if self._host_lengths is None:
            self._host_lengths = self.tensors["lengths"].cpu()
        return self._host_lengths

    def host_classes(self) -> torch.Tensor | None:
        if self.balance is not None and self._host_classes is None:
            self._host_classes = self.tensors[self.balance].cpu()
        return self._host_classes

    def to(self, device, channels_last=False):
        moved = {k: _place(v, device, channels_last) for k, v in self.tensors.items() if k != "lengths"}
        out = PaddedSource(self.tensors["lengths"].to(device), self.padded, self.info, self.window, self.balance,
                           **moved)
        out._host_lengths, out._host_classes = self.host_lengths(), self.host_classes()
        return out

    def select(self, index):
        on_device = index.to(self.device)
        kept = {k: v[on_device] for k, v in self.tensors.items() if k != "lengths"}
        out = PaddedSource(self.tensors["lengths"][on_device], self.padded, self.info, self.window, self.balance,
                           **kept)
        out._host_lengths = self.host_lengths()[index.cpu()]
        classes = self.host_classes()
        out._host_classes = None if classes is None else classes[index.cpu()]
        return out

    def batches(self, batch_size, *, shuffle=False, generator=None, drop_last=False, shard=(0, 1)):
        lengths = self.host_lengths()
        for idx, longest in length_batches(lengths, batch_size, self.window, shuffle=shuffle, generator=generator,
                                           drop_last=drop_last, shard=shard, classes=self.host_classes()):
            idx = idx.to(self.device, non_blocking=True)
            batch = {k: v[idx] for k, v in self.tensors.items()}
            for k in self.padded:
                batch[k] = batch[k][:, :longest]
            yield batch


class RaggedSource(BatchSource):
    """Variable-length 1-D items stored back to back in one flat tensor, e.g. a split of audio clips.

    Item i is `flat[offsets[i] : offsets[i] + lengths[i]]`; `tensors` are ordinary per-item
    tensors (targets...). Batches are drawn as `PaddedSource` draws them (`length_batches`)
    and are the same dicts: `key` holds the items of the batch zero-padded to its longest,
    gathered by indexing on the source's device (no per-item Python loop), beside `lengths`
    and the tensors.
    Nothing is stored as padding, so a split costs its samples, not items x longest item;
    `flat` may be a read-only memory map of a file, read only where batches touch it.
    """

    def __init__(self, flat: torch.Tensor, offsets: torch.Tensor, lengths: torch.Tensor, key: str = "audio",
                 info: dict[str, Any] | None = None, window: int = 50, **tensors: torch.Tensor):
        if flat.dim() != 1:
            raise ValueError(f"RaggedSource: flat must be 1-D, got shape {tuple(flat.shape)}")
        sizes = {"offsets": len(offsets), "lengths": len(lengths), **{k: len(v) for k, v in tensors.items()}}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"RaggedSource tensors differ in length: {sizes}")
        self.flat, self.offsets, self.key, self.window = flat, offsets, key, window
        self.tensors = {"lengths": lengths, **tensors}
        self.info = dict(info or {})
        # Batches are planned on host copies of lengths and offsets, made once (no device sync per epoch).
        self._host = (lengths, offsets) if lengths.device.type == "cpu" and offsets.device.type == "cpu" else None

    def host_lengths_offsets(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._host is None:
            self._host = (self.tensors["lengths"].cpu(), self.offsets.cpu())
        return self._host

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def device(self) -> torch.device:
        return self.flat.device

    def nbytes(self) -> int:
        parts = (self.flat, self.offsets, *self.tensors.values())
        return sum(t.element_size() * t.numel() for t in parts)

    def _with(self, flat, offsets, tensors) -> "RaggedSource":
        return RaggedSource(flat, offsets, tensors.pop("lengths"), self.key, self.info, self.window, **tensors)

    def to(self, device, channels_last=False):
        # channels_last is for 4-D images; ragged items are 1-D, so it does not apply.
        out = self._with(self.flat.to(device), self.offsets.to(device),
                         {k: v.to(device) for k, v in self.tensors.items()})
        out._host = self.host_lengths_offsets()
        return out

    def select(self, index):
        """The items `index`, copied back to back into a new flat tensor: a fraction of a split costs
        a fraction of its memory (and of what `to` moves), read from a memory map only where selected."""
        lengths, offsets = self.host_lengths_offsets()
        host_index = index.cpu()
        kept_lengths = lengths[host_index]
        flat = pack(self.flat, offsets[host_index], kept_lengths)
        kept_offsets = (torch.cumsum(kept_lengths, 0) - kept_lengths).to(self.offsets.dtype)
        on_device = index.to(self.device)
        out = self._with(flat, kept_offsets.to(self.device), {k: v[on_device] for k, v in self.tensors.items()})
        out._host = (kept_lengths, kept_offsets)
        return out

    def batches(self, batch_size, *, shuffle=False, generator=None, drop_last=False, shard=(0, 1)):
        lengths, offsets = self.host_lengths_offsets()
        for idx, longest in length_batches(lengths, batch_size, self.window, shuffle=shuffle, generator=generator,
                                           drop_last=drop_last, shard=shard):
            # Decided on the CPU copies, so a CUDA source does not wait for the device here.
            rows_fit = 0 < longest and int(offsets[idx].max()) + longest <= len(self.flat)
            idx = idx.to(self.device, non_blocking=True)
            batch = {k: v[idx] for k, v in self.tensors.items()}
            batch[self.key] = self._gather(self.offsets[idx], batch["lengths"], longest, rows_fit)
            yield batch

    def items(self, index: torch.Tensor) -> torch.Tensor:
        """The items `index`, zero-padded to the longest of them: (len(index), longest), as a batch holds them."""
        lengths, offsets = self.host_lengths_offsets()
        host_index = index.cpu()
        longest = int(lengths[host_index].max()) if len(host_index) else 0
        rows_fit = 0 < longest and int(offsets[host_index].max()) + longest <= len(self.flat)
        index = index.to(self.device)
        return self._gather(self.offsets[index], self.tensors["lengths"][index], longest, rows_fit)

    def _gather(self, starts: torch.Tensor, lengths: torch.Tensor, longest: int, rows_fit: bool) -> torch.Tensor:
        """(batch, longest) items, zero past each length.

        Rows of a sliding-window view of `flat` are copied whole (several times faster than
        indexing sample by sample); a batch whose rows would run past the end of `flat` is
        indexed sample by sample instead. Samples past an item's end belong to its neighbour: zeroed.
        """
        steps = torch.arange(longest, device=self.device)
        if rows_fit:
            rows = self.flat.unfold(0, longest, 1)[starts]
        else:
            rows = self.flat[(starts[:, None] + steps).clamp(max=max(0, len(self.flat) - 1))]
        return rows.masked_fill_(steps >= lengths[:, None], 0)
