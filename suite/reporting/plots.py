"""The report's plots (matplotlib, Agg backend), each returned as PNG bytes.

Every function draws one comparable group (one task, version, profile,
dataset and target) and names its series with `series(row)` (model,
machine, or both), so colours match across the three plots of a group.
Text from records (names, labels, values) is escaped where it is drawn
(`_t`: no `$...$` math from a label), so matplotlib's own math, such as
a log axis's 10^n tick labels, still renders; a glyph the font lacks (an
emoji) is drawn as a box without a warning per character.

A report draws dozens of figures of a few sizes, and laying out text is most
of a figure's cost: `_figure` hands out one cleared figure per size, made at
the PNG's resolution, so its renderer, and the text sizes matplotlib keeps
per renderer, serve every plot of that size, and the layout (`tight_layout`)
and the PNG measure each label once.
"""
from __future__ import annotations

import base64
import functools
import io
import math
import multiprocessing
import signal
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import EngFormatter, NullFormatter  # noqa: E402

from suite.measuring.contention import cpu_cores  # noqa: E402
from suite.results import stats  # noqa: E402
from suite.results.safetext import plain, plot_label as _t  # noqa: E402

Series = Callable[[Any], str]
SPREAD_WORDS = (f"bars: 95% interval ({stats.MIN_FOR_CI}+ seeds) or range (2-{stats.MIN_FOR_CI - 1}), "
                "none for one seed")
# A series name longer than this is cut (ending in "…"): legends and tick labels beside an axis take its
# width, and a 100-character label squeezed a log axis until its 10^n tick labels overlapped.
NAME_CHARS = 40
DPI = 80  # the PNGs' resolution, and the figures' own: text is measured once for the layout and the image
SERIES_COLUMNS = ["model", "hardware"]  # what a `series(row)` function may read from a row
_FIGURES: dict[tuple, Figure] = {}  # one figure per size and layout, cleared for each plot (`_figure`)
_FIGURES_KEPT = 16


# The columns of a comparison frame that the plot functions read: a group handed to a worker process
# carries only these.
PLOT_COLUMNS = [*SERIES_COLUMNS, "time_to_target_s", "train_time_s", "final_quality", "higher_is_better",
                "target_value", "target_metric", "throughput", "throughput_unit", "utilisation"]
# A report of many groups draws its figures in worker processes while its tables are built: the figures are
# independent, and each costs 0.1-0.3 s of matplotlib (a 20,000-record folder has 60 of them). A worker's
# start (its imports) costs about half a second, so a few figures are drawn here.
MAX_WORKERS = 4
FIGURES_PER_WORKER = 12


class Drawing:
    """Figures drawn in the background: `submit(draw, *args)` is a Future of `draw(*args)` (PNG bytes).

    With more than FIGURES_PER_WORKER figures per CPU (up to MAX_WORKERS CPUs) they are drawn in a pool of
    worker processes (started the platform's way, or by `start_method`), so `draw` and its arguments must
    pickle; otherwise each is drawn at `submit`, here.
    Use it as a context manager: leaving it waits for the workers (or cancels what is left after an error).
    """

    def __init__(self, figures: int, start_method: str | None = None):
        workers = min(MAX_WORKERS, cpu_cores(), figures // FIGURES_PER_WORKER)
        self.workers = workers if workers > 1 else 0
        context = multiprocessing.get_context(start_method)  # None: the platform's default
        self._pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_leave_interrupts_to_parent) \
            if self.workers else None

    def submit(self, draw: Callable[..., bytes], *args: Any) -> Future:
        if self._pool is not None:
            return self._pool.submit(draw, *args)
        done: Future = Future()
        done.set_result(draw(*args))
        return done

    def __enter__(self) -> "Drawing":
        return self

    def __exit__(self, kind, error, trace) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=kind is not None)


def _leave_interrupts_to_parent() -> None:
    """Ctrl-C reaches every process of the terminal's group: a worker ignores it, and the report's process
    stops the pool (a traceback per worker is not how an interrupted command ends)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _figure(width: float, height: float, ncols: int = 1):
    """(figure, axes) of this size: the one kept for the size, cleared, or a new one (no pyplot registry)."""
    key = (round(width, 3), round(height, 3), ncols)
    fig = _FIGURES.get(key)
    if fig is None:
        if len(_FIGURES) >= _FIGURES_KEPT:
            _FIGURES.clear()
        fig = Figure(figsize=(width, height), dpi=DPI)
        FigureCanvasAgg(fig)
        _FIGURES[key] = fig
    else:
        for ax in list(fig.axes):  # dropped, not cleared first: an axes cleared is set up anew, for nothing
            fig.delaxes(ax)
        fig.clear()
    return fig, fig.subplots(1, ncols)


def _name(text: Any) -> str:
    """A series name as drawn: one line, at most NAME_CHARS characters, escaped (`_t`)."""
    text = plain(text)
    return _t(text if len(text) <= NAME_CHARS else text[:NAME_CHARS - 1] + "\u2026")


def _drawing(draw):
    """Draw without TeX (a user's matplotlibrc may ask for it; record text is not LaTeX) and without
    the warning matplotlib gives for each character its font lacks (emoji in a label)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with plt.rc_context({"text.usetex": False}), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
            return draw(*args, **kwargs)
    return wrapper


def b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


@_drawing
def learning_curves(runs: list[tuple[str, dict[str, Any]]], title: str) -> bytes:
    """Target metric against training time, one line per run (seed), one colour per series."""
    fig, ax = _figure(7.6, 3.8)
    colors = _colors(label for label, _ in runs)
    labelled: set[str] = set()
    target = runs[0][1]["target"] if runs else {}
    for label, record in runs:
        points = [(p["time_s"], p[target["metric"]]) for p in record.get("curve") or [] if isinstance(p, dict)
                  and isinstance(p.get(target["metric"]), (int, float)) and isinstance(p.get("time_s"), (int, float))]
        if not points:
            continue
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker=".", lw=1.2, alpha=0.8, color=colors[label],
                label=None if label in labelled else _name(label))
        labelled.add(label)
    if target:
        ax.axhline(target["value"], ls="--", color="grey", lw=1, label=f"target {target['value']:g}")
    ax.set(xlabel="training time (s)", ylabel=_t(target.get("metric", "")), title=_t(f"{title}: learning curves"))
    _log_x_if_wide(ax, [x for line in ax.get_lines() for x in line.get_xdata()])
    return _finish(fig, ax)


@_drawing
def time_to_target(group: pd.DataFrame, series: Series, title: str) -> bytes:
    """Median time-to-target per series with its bootstrap interval; seeds as dots; 'not reached' written out."""
    times_of: dict[str, list[float]] = {}
    for key, value in zip(_series_of(group, series), group["time_to_target_s"]):
        times_of.setdefault(key, []).append(value)
    labels = sorted(times_of)
    colors = _colors(labels)
    fig, ax = _figure(7.6, 0.6 + 0.45 * len(labels) + 1.2)
    finite = group["time_to_target_s"][group["time_to_target_s"] < math.inf]
    right = float(finite.max()) * 1.15 if len(finite) else 1.0
    bars: list[tuple[int, float, Any]] = []  # (y, median, colour): drawn in one call each, as are the
    spreads: list[tuple[int, float, float, float]] = []  # (y, median, low, high) bars and the dots below
    dots: list[tuple[float, int]] = []
    for y, label in enumerate(labels):
        times = times_of[label]
        med, spread = stats.median(times), stats.spread(times)
        reached = sum(t < math.inf for t in times)
        if med < math.inf:
            bars.append((y, med, colors[label]))
            if spread is not None:  # one seed has no spread: no bar is drawn that could read as one
                spreads.append((y, med, spread[0], spread[1]))
                if spread[1] == math.inf:
                    ax.annotate("→ not reached", (right, y), fontsize=8, va="center", ha="right")
        else:
            ax.text(0, y - 0.3, f" median not reached ({reached}/{len(times)} seeds reached)", va="center",
                    fontsize=8)
        dots += [(t, y) for t in times if t < math.inf]
    if bars:
        ax.barh([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars], alpha=0.6)
    if spreads:
        ax.errorbar([s[1] for s in spreads], [s[0] for s in spreads], fmt="none", color="black", capsize=4,
                    xerr=[[s[1] - s[2] for s in spreads], [min(s[3], right) - s[1] for s in spreads]])
    ax.scatter([d[0] for d in dots], [d[1] for d in dots], color="black", s=10, zorder=3)
    ax.set_yticks(range(len(labels)), [_name(label) for label in labels])
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_xlim(0, right)
    ax.set(xlabel=f"time to target (s), median; {SPREAD_WORDS}", title=_t(f"{title}: time to target"))
    return _finish(fig, ax, legend=False)


@_drawing
def quality_vs_time(group: pd.DataFrame, series: Series, title: str) -> bytes:
    """Final quality against training time per run; the Pareto front of the per-series medians marked."""
    keys = np.array(_series_of(group, series), dtype=object)
    labels = sorted(set(keys))
    colors = _colors(labels)
    higher = bool(group["higher_is_better"].iloc[0])
    fig, ax = _figure(7.6, 3.8)
    medians = []
    measured = group[["train_time_s", "final_quality"]]  # the two numbers drawn: no text column is copied
    for label in labels:
        sub = measured[keys == label].dropna()
        if sub.empty:
            continue
        ax.scatter(sub["train_time_s"], sub["final_quality"], color=colors[label], alpha=0.5, s=16)
        med = (stats.median(sub["train_time_s"]), stats.median(sub["final_quality"]))
        ax.scatter(*med, color=colors[label], marker="D", s=50, edgecolor="black", label=_name(label) + " (median)")
        medians.append(med)
    front = [medians[i] for i in stats.pareto_front([m[0] for m in medians], [m[1] for m in medians], higher)]
    if front:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="black", lw=1, ls=":")
        ax.scatter(*zip(*front), s=160, facecolors="none", edgecolors="black", label="Pareto front")
    ax.axhline(group["target_value"].iloc[0], ls="--", color="grey", lw=1, label="target")
    ax.set(xlabel="training time (s)", ylabel=_t(f"final {group['target_metric'].iloc[0]}"),
           title=_t(f"{title}: quality against time"))
    _log_x_if_wide(ax, group["train_time_s"].dropna())
    return _finish(fig, ax)


@_drawing
def speed(group: pd.DataFrame, series: Series, title: str) -> bytes:
    """The speed profile of one task: median throughput and utilisation per series (model, machine or
    both), seeds as dots; a bar for the spread only where there are two or more values."""
    keys = _series_of(group, series)
    labels = sorted(set(keys))
    colors = _colors(labels)
    units = sorted(set(group["throughput_unit"].dropna())) if "throughput_unit" in group else []
    fig, axes = _figure(9.6, 0.6 + 0.45 * len(labels) + 1.2, ncols=2)
    panels = (("throughput", f"throughput ({', '.join(units) or 'per s'})", 1.0),
              ("utilisation", "utilisation (% of the measured peak)", 100.0))
    for ax, (column, xlabel, scale) in zip(axes, panels):
        drawn = False
        values_of: dict[str, list[float]] = {}
        for key, v in zip(keys, group[column]):
            if isinstance(v, (int, float)) and math.isfinite(v):
                values_of.setdefault(key, []).append(float(v) * scale)
        for y, label in enumerate(labels):
            values = values_of.get(label, [])
            if not values:
                ax.text(0, y, " no figure", va="center", fontsize=8)
                continue
            med, spread = stats.median(values), stats.spread(values)
            ax.barh(y, med, color=colors[label], alpha=0.6)
            if spread is not None:
                ax.errorbar(med, y, xerr=[[med - spread[0]], [spread[1] - med]], color="black", capsize=4,
                            fmt="none")
            ax.scatter(values, [y] * len(values), color="black", s=10, zorder=3)
            drawn = True
        ax.set_yticks(range(len(labels)), [_name(label) for label in labels] if ax is axes[0] else [])
        ax.set_ylim(-0.6, len(labels) - 0.4)
        if not drawn:
            ax.set_xlim(0, 1)
        ax.set(xlabel=xlabel)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 150k, not 150000 run into its neighbour
        ax.grid(alpha=0.3)
    fig.suptitle(_t(f"{title}: throughput and utilisation (median; {SPREAD_WORDS})"), fontsize=9)
    return _png(fig)


def _series_of(group: pd.DataFrame, series: Series) -> list[str]:
    """Each row's series label, in row order: computed once per row, however many series there are
    (from the SERIES_COLUMNS alone: a row of every column costs more than the label)."""
    return [series(row) for row in group[[c for c in SERIES_COLUMNS if c in group]].itertuples(index=False)]


def _log_x_if_wide(ax, xs) -> None:
    """Log time axis when times span more than 30x, so fast runs are not squeezed against zero."""
    positive = [x for x in xs if x > 0]
    if positive and max(positive) / min(positive) > 30:
        ax.set_xscale("log")
        ax.set_xlabel(ax.get_xlabel() + ", log scale")


def _colors(labels) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(sorted(set(labels)))}


def _finish(fig, ax, legend: bool = True) -> bytes:
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return _png(fig)


def _png(fig) -> bytes:
    """The figure as PNG bytes (laid out first); the figure is kept for the next plot of its size."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


@_drawing
def study(series: list[tuple[str, pd.DataFrame]], key: str, metric: str, target: float, title: str) -> bytes:
    """Two panels against the value of `key`: final quality and time to target, medians with their 95%
    interval as a band (error bars on a categorical axis), one line per series.

    `series` holds (label, summary rows from suite.results.study.summarize) sorted by the value; values that are
    all numbers make a numeric axis (log when they span more than 30x), anything else a categorical one.
    A time-to-target median that is `inf` is drawn as an x at the top, marked "not reached".
    """
    values = [v for _, part in series for v in part[key]]
    numeric = all(_is_number(v) for v in values)
    categories = sorted(dict.fromkeys(values), key=lambda v: float(v) if numeric else values.index(v))  # as given
    position = (lambda v: float(v)) if numeric else (lambda v: float(categories.index(v)))
    fig, axes = _figure(9.6, 3.6, ncols=2)
    colors = _colors(label for label, _ in series)
    any_reached = any(math.isfinite(v) for _, part in series for v in part["time_to_target_s"])
    for label, part in series:
        xs = [position(v) for v in part[key]]
        for ax, measure in zip(axes, ("quality", "time_to_target_s")):
            med, lo, hi = (part[c].to_numpy(dtype=float) for c in (measure, f"{measure}_lo", f"{measure}_hi"))
            finite = [i for i, m in enumerate(med) if math.isfinite(m)]
            fx, fm = [xs[i] for i in finite], [med[i] for i in finite]
            ax.plot(fx, fm, marker="o", ls="-" if numeric else "none", color=colors[label], label=_name(label) or None)
            flo = [lo[i] if math.isfinite(lo[i]) else med[i] for i in finite]
            fhi = [hi[i] if math.isfinite(hi[i]) else med[i] for i in finite]
            if numeric and len(fx) > 1:
                ax.fill_between(fx, flo, fhi, color=colors[label], alpha=0.2)
            else:  # a bar only where there is a spread: one seed's value gets none
                bars = [i for i in range(len(fx)) if fhi[i] > flo[i]]
                if bars:
                    ax.errorbar([fx[i] for i in bars], [fm[i] for i in bars],
                                yerr=[[fm[i] - flo[i] for i in bars], [fhi[i] - fm[i] for i in bars]],
                                fmt="none", color=colors[label], capsize=4)
            missed = [xs[i] for i, m in enumerate(med) if m == math.inf]
            if missed and any_reached:
                top = max([v for v in fhi + fm if math.isfinite(v)] or [0.0])
                ax.scatter(missed, [top] * len(missed), marker="x", color=colors[label], s=60)
                for x in missed:
                    ax.annotate("not reached", (x, top), fontsize=7, ha="center", va="bottom")
    if not any_reached:
        axes[1].set_yticks([])
        axes[1].text(0.5, 0.5, "no variant's median reached the target", transform=axes[1].transAxes,
                     ha="center", va="center", fontsize=9)
    axes[0].axhline(target, ls="--", color="grey", lw=1, label=f"target {target:g}")
    axes[0].set(xlabel=_t(key), ylabel=_t(f"final {metric}"), title="quality")
    axes[1].set(xlabel=_t(key), ylabel="time to target (s)", title="time to target")
    names = [_t(v) for v in categories]
    for ax in axes:
        if numeric:
            positive = [float(v) for v in categories if float(v) > 0]
            if positive and max(positive) / min(positive) > 30:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # the values are the labels: no 2x10^n between
            ax.set_xticks([float(v) for v in categories], names)
        else:
            ax.set_xticks(range(len(categories)), names)
            ax.set_xlim(-0.5, len(categories) - 0.5)
        ax.grid(alpha=0.3)
    if not any_reached:
        axes[1].set_xlim(axes[0].get_xlim())
    handles = axes[0].get_legend_handles_labels()[0]
    if handles:
        axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(_t(f"{title}: {key}"), fontsize=10)
    return _png(fig)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
