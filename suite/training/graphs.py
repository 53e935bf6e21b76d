"""Training steps captured in CUDA graphs (`--cuda-graphs`): one graph per batch shape, replayed.

Small networks spend their training step launching kernels, not running them. A CUDA graph
launches a whole recorded step (forward, backward, gradient clipping, optimizer) at once.

Why `torch.cuda.CUDAGraph` and not `torch.compile(mode="reduce-overhead")`: the graph records
the very kernels the step launches, so an eager and a captured cell of one model differ by
launch overhead alone (reduce-overhead also generates kernels of its own); a capture costs a few
eager steps, not a compilation; hand-written and transformers models are taken alike, with no
graph breaks to track; and the whole step is one graph, optimizer included (reduce-overhead
graphs the compiled forward and backward). The two compose: with `--compile` too the model is
compiled in torch.compile's default mode (fused kernels, no graphs of its own), its compilation
happens in the warm-up steps before the first capture, and the graph replays the compiled
kernels: a cell of its own, keyed by both settings. A step that cannot be
captured (a host sync inside it, as `F.ctc_loss` makes on CUDA) fails at its first capture,
before any timing, and the run is recorded `skipped` with the reason (`Uncapturable`).

How a step is captured (torch's whole-network recipe, "CUDA Graphs" in torch's CUDA notes):
- each graph owns static input buffers: a call copies its batch into them, replays the graph and
  returns a copy of the graph's static loss;
- before a capture, `WARMUP` eager steps on a side stream (cuDNN autotuning, workspaces, the
  optimizer's lazily made state), then undone (`Snapshot`): weights, buffers and optimizer state
  are copied back in place and the random streams restored, so capturing changes nothing a run
  trains. Replays draw random numbers (dropout, augmentation) from the same streams, in the same
  order, as eager steps;
- the optimizer is built capturable (`suite.training.optim.build_optimizer(capturable=True)`:
  Adam/AdamW with `capturable=True`, SGD fused) and `prepare_optimizer` makes every learning rate
  a device tensor, which schedulers fill in place (`set_lr`), so a schedule reaches the graph;
- gradients: a step ends with `zero_grad(set_to_none=True)`, so the captured backward writes
  fresh gradients into the graph's memory on each replay (no zeroing kernel);
- the autocast weight cache is off while capturing, as torch advises for graphs;
- the graphs of one step share one memory pool: replays never overlap.

Shapes: a graph holds for one set of input shapes, so a step keeps one per shape it meets
(length-bucketed sentiment and speech batches: one per bucket, captured lazily, at most
`MAX_GRAPHS`). A step that reads device values on the host through `host_values` (the BiLSTM's
packed layout comes from its lengths) is captured per batch: its graph holds for one batch's
values, which only a repeating pool of batches (the speed profile's) can use; elsewhere it is
refused.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Callable, Hashable, Iterator

import torch
from torch import nn

from suite.errors import SkipRun
from suite.training import directional

WARMUP = 3  # eager steps before a capture (torch's example takes 3; DDP would want 11, and is refused)
MAX_GRAPHS = 16  # graphs one step may hold: the speed profile's pool of 8 batches, with room


class Uncapturable(SkipRun):
    """This run's step cannot be captured in a CUDA graph: the run is recorded `skipped` with the reason."""

    def __init__(self, why: str):
        super().__init__(f"--cuda-graphs: {why}")


def require_cuda(device: torch.device) -> None:
    """Uncapturable unless `device` is a CUDA device (never a silent eager run recorded as captured)."""
    if device.type != "cuda":
        raise Uncapturable(f"CUDA graphs need a CUDA device and this run is on {device.type}: drop the flag "
                           "or run with --device cuda")


Signature = tuple


def signature(batch: dict[str, torch.Tensor]) -> Signature:
    """What a graph's static inputs fix: each tensor's name, shape, strides, dtype and device."""
    for name, value in batch.items():
        if not isinstance(value, torch.Tensor):
            raise Uncapturable(f"batch entry {name!r} is a {type(value).__name__}, not a tensor: a graph takes tensors")
    return tuple((k, tuple(v.shape), v.stride(), v.dtype, v.device) for k, v in sorted(batch.items()))


def describe(sig: Signature) -> str:
    """A signature as text: "x 512x3x32x32, y 512"."""
    return ", ".join(f"{name} {'x'.join(map(str, shape)) or 'scalar'}" for name, shape, *_ in sig)


# -- the optimizer ------------------------------------------------------------------
def prepare_optimizer(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Check that a captured step can replay `optimizer`'s update, and make every group's learning
    rate a tensor on its parameters' device; returns those tensors (the graph reads them).

    Adam and AdamW need `capturable=True` on CUDA (their step count stays on the device); SGD needs
    its fused kernel (the foreach one reads a tensor learning rate on the host) and no dampening
    (`Snapshot` resets its momentum to zero, which equals a fresh buffer only then).
    """
    if not isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)):
        raise Uncapturable(f"{type(optimizer).__name__} is not a capturable optimizer here (Adam, AdamW, SGD)")
    rates = []
    for group in optimizer.param_groups:
        device = group["params"][0].device if group["params"] else torch.device("cpu")
        if isinstance(optimizer, torch.optim.SGD) and (not group.get("fused") or group["dampening"]):
            raise Uncapturable("SGD is captured fused and without dampening: build it with "
                               "suite.training.optim.build_optimizer(capturable=True)")
        if isinstance(optimizer, torch.optim.Adam) and device.type == "cuda" and not group["capturable"]:
            raise Uncapturable(f"{type(optimizer).__name__} must be built with capturable=True "
                               "(suite.training.optim.build_optimizer(capturable=True))")
        if not isinstance(group["lr"], torch.Tensor):
            group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
        rates.append(group["lr"])
    return rates


def set_lr(group: dict, lr: float) -> None:
    """Set a param group's learning rate: in place when it is a tensor, which a captured step reads."""
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(lr)
    else:
        group["lr"] = lr


class Snapshot:
    """A model's weights and buffers and its optimizer's state and learning rates, to put back *in
    place*: a captured graph reads and writes those very tensors, so they must never be replaced
    (`Optimizer.load_state_dict` would). State the optimizer made after the snapshot (its first
    step) is zeroed, which is a fresh state for Adam, AdamW and SGD without dampening."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.optimizer = model, optimizer
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.state = {p: {k: v.detach().clone() for k, v in s.items() if isinstance(v, torch.Tensor)}
                      for p, s in optimizer.state.items()}
        self.rates = [float(g["lr"]) for g in optimizer.param_groups]

    @torch.no_grad()
    def restore(self) -> None:
        self.model.load_state_dict(self.weights)  # copies into the existing tensors
        for param, state in self.optimizer.state.items():
            saved = self.state.get(param, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and key in saved:
                    value.copy_(saved[key])
                elif isinstance(value, torch.Tensor):
                    value.zero_()
        for group, rate in zip(self.optimizer.param_groups, self.rates):
            set_lr(group, rate)


@contextlib.contextmanager
def undone(model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
           in_place: bool = False) -> Iterator[None]:
    """Warm-up work (first steps, FLOP counts, compilation) that changes nothing a run trains: inside,
    no random numbers are drawn from the run's streams (`fork_rng`); on leaving, the weights, buffers
    (batch-norm running statistics), optimizer state and each module's train/eval mode are those found
    on entering. `in_place` where a captured graph reads those very tensors (`Snapshot`); else by
    `load_state_dict` of copies, which also drops the optimizer state made inside (Adam's moments, step
    counts): exact for any optimizer."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        modes = [(module, module.training) for module in model.modules()]
        snapshot = Snapshot(model, optimizer) if in_place else copy.deepcopy(
            (model.state_dict(), optimizer.state_dict()))
        yield
        if in_place:
            snapshot.restore()
        else:
            model.load_state_dict(snapshot[0])
            optimizer.load_state_dict(snapshot[1])
        for module, training in modes:
            module.training = training


# -- host reads -----------------------------------------------------------------------
_READS: "_HostReads | None" = None  # the reads of the step being warmed up or captured (steps run in one thread)


def host_values(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` copied to the host (a sync), for a model that shapes its computation by device values.

    While a step is captured, the copy its last warm-up made: a graph cannot wait for the host, so
    the values are fixed into the graph, which then holds for that batch only (`CapturedStep`).
    """
    if _READS is None:
        return tensor.cpu()
    return _READS.take(tensor)


@torch.compiler.disable
def packed_rnn(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`rnn` (batch_first) over each row's first `lengths` steps only, so a bidirectional one's backward
    direction starts at each row's own last step, not in the padding; zeros past the end.

    On a CPU, each direction over the padded batch (`directional.directional_rnn`: the same outputs,
    faster there). Elsewhere, what pack_padded_sequence(enforce_sorted=False) does, with the sorting
    kept on the device: only the sorted lengths (the packed layout) go to the host, through `host_values`,
    which a CUDA graph of the training step can hold; the same sort, the same figures.

    Eager also inside a compiled model (`--compile`): dynamo cannot trace the RNN (the caller's graph
    ends where it meets one), and the sorting, the host read and the packing around it stay plain
    Python too, in no graph of their own.
    """
    if x.device.type == "cpu" and directional.supported(rnn):
        return directional.directional_rnn(rnn, x, lengths)
    order = lengths.argsort(descending=True)
    packed = nn.utils.rnn.pack_padded_sequence(x.index_select(0, order), host_values(lengths[order]),
                                               batch_first=True)
    out, _ = nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=x.shape[1])
    return out.index_select(0, nn.utils.rnn.invert_permutation(order))


class _HostReads:
    """The host copies one warm-up step made, in order, and their replay while the step is captured."""

    def __init__(self) -> None:
        self.values: list[torch.Tensor] = []
        self.capturing = False
        self.next = 0

    @contextlib.contextmanager
    def active(self, capturing: bool) -> Iterator[None]:
        global _READS
        if not capturing:
            self.values = []  # each warm-up step records afresh: the last one's are the capture's
        self.capturing, self.next = capturing, 0
        before, _READS = _READS, self
        try:
            yield
        finally:
            _READS = before

    def take(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.capturing:
            value = tensor.cpu()
            self.values.append(value)
            return value
        if self.next >= len(self.values) or self.values[self.next].shape != tensor.shape:
            raise Uncapturable("the step read other host values while captured than in its warm-up")
        self.next += 1
        return self.values[self.next - 1]


# -- capture and replay ---------------------------------------------------------------
class CudaBackend:
    """Warm-up on a side stream, capture into a graph sharing one memory pool, replay: torch.cuda."""

    def __init__(self, device: torch.device):
        self.device = device
        self.pool = None

    def kept_rng(self) -> contextlib.AbstractContextManager:
        return torch.random.fork_rng(devices=[self.device])

    def warm_up(self, fn: Callable[[], object], times: int) -> None:
        side, main = torch.cuda.Stream(self.device), torch.cuda.current_stream(self.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            for _ in range(times):
                fn()
        main.wait_stream(side)

    def capture(self, fn: Callable[[], torch.Tensor]) -> tuple[Callable[[], None], torch.Tensor]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            output = fn()
        if self.pool is None:
            self.pool = graph.pool()
        return graph.replay, output


class _Graph:
    def __init__(self, inputs: dict[str, torch.Tensor], output: torch.Tensor, replay: Callable[[], None]):
        self.inputs, self.output, self.replay = inputs, output, replay

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        for name, buffer in self.inputs.items():
            buffer.copy_(batch[name])
        self.replay()
        return self.output.clone()  # the static output is rewritten by the next replay


class CapturedStep:
    """`step(batch) -> loss` (a training step that ends with `zero_grad(set_to_none=True)`), replayed
    from CUDA graphs: one per batch signature, captured on first meeting it (the module's docstring).

    `repeating`: the batches are a fixed pool that comes round again (the speed profile), so a step
    that reads host values (`host_values`) may have a graph per batch. `freeze()` forbids further
    captures: a batch of a new shape after the warm-up is then `Uncapturable`, never timed as a
    capture. `backend` is `CudaBackend` on the parameters' device unless given.
    """

    def __init__(self, step: Callable[[dict[str, torch.Tensor]], torch.Tensor], model: nn.Module,
                 optimizer: torch.optim.Optimizer, *, repeating: bool = False, backend=None,
                 warmup: int = WARMUP, max_graphs: int = MAX_GRAPHS):
        self.step, self.model, self.optimizer = step, model, optimizer
        self.repeating, self.warmup, self.max_graphs = repeating, warmup, max_graphs
        self.backend = backend or CudaBackend(next(model.parameters()).device)
        self.rates = prepare_optimizer(optimizer)
        self.graphs: dict[Hashable, _Graph] = {}
        self.per_batch: set[Signature] = set()  # signatures whose step reads host values
        self.frozen = False

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        for i, (group, rate) in enumerate(zip(self.optimizer.param_groups, self.rates)):
            if group["lr"] is not rate:  # the graph reads `rate`: a number put in its place would never arrive
                raise RuntimeError(f"the learning rate of param group {i} was replaced after capture: set it in "
                                   "place (suite.training.graphs.set_lr)")
        sig = signature(batch)
        graph = self.graphs.get((sig, id(batch)) if sig in self.per_batch else sig)
        return (graph or self._capture(batch, sig))(batch)

    def prepare(self, batch: dict[str, torch.Tensor]) -> None:
        """Capture the graph of `batch`'s signature now (before a clock starts), training nothing on it."""
        sig = signature(batch)
        if sig not in self.graphs and sig not in self.per_batch:
            self._capture(batch, sig)

    def freeze(self) -> None:
        """No more captures: a batch of another signature is Uncapturable from now on."""
        self.frozen = True

    def _capture(self, batch: dict[str, torch.Tensor], sig: Signature) -> _Graph:
        if self.frozen:
            raise Uncapturable(f"a batch of a new shape ({describe(sig)}) after the warm-up; this loop captures "
                               "fixed-shape steps only")
        if len(self.graphs) >= self.max_graphs:
            raise Uncapturable(f"more than {self.max_graphs} distinct batches to capture ({describe(sig)} is one more)")
        inputs = {k: v.clone() for k, v in batch.items()}
        reads = _HostReads()
        snapshot = Snapshot(self.model, self.optimizer)
        before = torch.is_autocast_cache_enabled()
        torch.set_autocast_cache_enabled(False)
        try:
            with self.backend.kept_rng():  # a capture draws no random numbers: its replays do
                def warm() -> None:
                    with reads.active(capturing=False):
                        self.step(inputs)
                self.backend.warm_up(warm, self.warmup)
            self.model.zero_grad(set_to_none=True)  # the captured backward makes its gradients in the graph
            with reads.active(capturing=True):
                try:
                    replay, output = self.backend.capture(lambda: self.step(inputs))
                except RuntimeError as exc:  # Uncapturable (a SkipRun) passes through as it is
                    raise Uncapturable(f"the training step cannot be captured ({_first_cause(exc)})") from exc
        finally:
            torch.set_autocast_cache_enabled(before)
        snapshot.restore()
        key: Hashable = sig
        if reads.values:
            if not self.repeating:
                raise Uncapturable(f"the step reads device values on the host ({len(reads.values)} read(s), e.g. "
                                   "lengths that shape a packed sequence), so a graph holds for one batch's values, "
                                   "and this run's batches never repeat")
            self.per_batch.add(sig)
            key = (sig, id(batch))
        self.graphs[key] = _Graph(inputs, output, replay)
        return self.graphs[key]


def _first_cause(exc: BaseException) -> str:
    """The first line of the error that started a chain (a failed capture raises again as it ends)."""
    while exc.__context__ is not None and exc.__cause__ is None:
        exc = exc.__context__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
