"""One self-contained HTML report (plus the same tables as Markdown and CSV) from results folders.

The HTML file has no external assets: styles are inline and every plot is
a PNG embedded as base64, so it opens offline and can be mailed around.
Next to it: FILE.md (the same tables and notes) and FILE_tables/*.csv (the
numeric cells: median, interval bounds and n per measure, for other tools).
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from suite.reporting import plots
from suite.reporting.markdown import to_markdown as markdown_table
from suite.results import compare, families, speedup, stats, study
from suite.results.safe_io import atomic_write_csv, atomic_write_text, plain
from suite.results.safetext import clean, markdown

_ENV_FIELDS = [("hardware", k) for k in ("device", "device_name", "cpu", "cores", "ram_gb", "gpus", "gpu_mem_gb",
                                         "driver", "hostname")] + \
              [("software", k) for k in ("python", "torch", "cuda", "cudnn", "dlbench", "git_commit", "os")]
_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1300px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f0f0f0}h2{border-bottom:2px solid #ddd;margin-top:2em}
.note{color:#555;font-size:13px}.warn{color:#8a4b00;font-size:13px}img{max-width:100%;border:1px solid #eee}
.plots{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}"""


@dataclass
class Section:
    """A heading, notes, tables (name -> display frame), notes under the tables, images (caption -> PNG)."""

    title: str
    notes: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    after: list[str] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)


def write_report(paths: list[Path], out: Path, baseline: str | None = None,
                 time_rule: str = "train") -> tuple[list[Path], compare.Pool]:
    """Write OUT (HTML), OUT.md and OUT_tables/*.csv from the records under `paths`; return (files, pool)."""
    data = compare.pool(paths)
    sections, csvs = build_sections(data, baseline, time_rule)
    header = _header(paths, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, to_html(header, sections))  # a full disk leaves the previous report whole
    md = out.with_suffix(".md")
    atomic_write_text(md, to_markdown(header, sections))
    folder = out.parent / f"{out.stem}_tables"
    folder.mkdir(exist_ok=True)
    written = [out, md]
    for name, frame in csvs.items():
        atomic_write_csv(frame, folder / f"{name}.csv")
        written.append(folder / f"{name}.csv")
    return written, data


def build_sections(data: compare.Pool, baseline: str | None,
                   time_rule: str = "train") -> tuple[list[Section], dict[str, pd.DataFrame]]:
    """The report's sections, and the numeric frames written as CSV; time-to-target follows `time_rule`."""
    frame, time_notes = compare.with_time_rule(data.frame, time_rule)
    warnings = data.warnings + time_notes
    sections = [Section("Warnings", notes=warnings or ["none: every record was readable and fit"])]
    if frame.empty:
        return sections + [_environment(data)], {}
    csvs: dict[str, pd.DataFrame] = {}
    drawn, figures = _plots(data)
    with plots.Drawing(len(figures)) as drawing:
        # The figures are drawn (in worker processes, for a large folder) while the tables are built.
        pngs = {caption: drawing.submit(draw, *args) for caption, (draw, args) in figures.items()}
        sections += _table_sections(data, frame, baseline, time_rule, csvs)
        drawn.images = {caption: png.result() for caption, png in pngs.items()}
    sections.append(drawn)
    sections.append(_environment(data))
    return sections, csvs


def _table_sections(data: compare.Pool, frame: pd.DataFrame, baseline: str | None, time_rule: str,
                    csvs: dict[str, pd.DataFrame]) -> list[Section]:
    """Every section but warnings, plots and environment; the numeric frames go into `csvs`."""
    sections: list[Section] = []
    labels = sorted(frame["hardware"].unique())
    upgraded = sorted(frame.groupby("hardware")["torch"].nunique().loc[lambda n: n > 1].index)
    sections.append(Section("By model", notes=_legend(time_rule),
                            tables={"by model": compare.to_table(frame, "model")}))
    csvs.update(runs=frame, by_model=compare.summarize(frame, compare.COMPARABLE + ["hardware", "model", "torch"]))
    if len(labels) > 1:
        tables = compare.to_tables(frame, "hardware", compare.MEASURES)
        sections.append(Section(f"By hardware ({', '.join(labels)})", notes=_legend(time_rule), tables=tables))
    else:
        sections[-1].notes.append(f"one machine ({labels[0]}): no by-hardware table")
    if upgraded:
        tables = compare.to_tables(frame, "software", ["time_to_target_s", "throughput", "utilisation"])
        oldest = compare.torch_versions(frame)[0]
        by_torch = speedup.speedups(frame, oldest, "torch", normalise=time_rule == "train")
        tables[f"speedup against torch {oldest}"], tables["speedup (geometric mean)"] = \
            speedup.speedup_tables(by_torch)
        sections.append(Section(f"By torch version (on {', '.join(upgraded)})", notes=_legend(time_rule),
                                tables=tables, after=by_torch.caveats))
    else:
        sections[-1].notes.append("no machine ran more than one torch version: no by-software table")
    if families.has_both_sides(data.records):
        table, csvs["deep_vs_hand_crafted"], notes = families.tables(data.records)
        sets, csvs["deep_vs_hand_crafted_sets"], set_notes = families.held_out_tables(data.records)
        sections.append(Section("Deep against hand-crafted", notes=notes + set_notes[:1],
                                tables={"deep vs hand-crafted": table, "in domain and held out": sets},
                                after=set_notes[1:]))
    found = study.studies(data.records)
    if found:
        sections.append(_studies(found))
        csvs.update({f"study_{i}": study.summarize(s) for i, s in enumerate(found, 1)})
    speed = _speedup_section(frame, baseline, labels, time_rule)
    if speed is not None:
        sections.append(speed[0])
        csvs.update(speed[1])
    return sections


def _legend(time_rule: str = "train") -> list[str]:
    return [f"Time-to-target rule: {compare.TIME_RULES[time_rule][1]}.",
            f"Each cell: median, then 'CI [lo, hi]' (a 95% interval: {stats.METHOD}) when the cell has "
            f"{stats.MIN_FOR_CI} or more values, or 'range [lo, hi]' (the smallest and largest value, no confidence "
            "attached) when it has 2 to 4; n=number of values; n=1 has neither. "
            "A run that did not reach the target counts as infinitely slow "
            "(as in AlgoPerf and MLPerf): the time-to-target median is 'not reached' unless more than half "
            "the seeds reached it."]


def _speedup_section(frame: pd.DataFrame, baseline: str | None, labels: list[str], time_rule: str):
    notes = []
    if baseline is None:
        if len(labels) < 2:
            return None
        counts = frame["hardware"].value_counts()
        baseline = sorted(labels, key=lambda lab: (-counts[lab], lab))[0]
        notes.append(f"baseline chosen automatically (the machine with most runs): {baseline}; "
                     "choose another with --baseline LABEL")
    result = speedup.speedups(frame, baseline, normalise=time_rule == "train")
    per_task, suite = speedup.speedup_tables(result)
    section = Section(f"Speedup against {result.dimension} {baseline}", notes=notes,
                      tables={"per task": per_task, "suite (geometric mean)": suite}, after=result.caveats)
    numeric = result.per_task.drop(columns=["_pair", "interval", "throughput_interval"], errors="ignore") \
        if not result.per_task.empty else result.per_task
    return section, {"speedup_per_task": numeric, "speedup_suite": result.suite}


def _studies(found: list[study.Study]) -> Section:
    """One table per study (variants of one model, suite.results.study) and one plot per varied key."""
    section = Section("Studies", notes=[
        "Variants of one model (`--set` / `dlbench sweep --vary`), one row per variant. Time to target "
        "follows the train rule (AlgoPerf); 'not reached' where fewer than half the seeds reached the target. "
        "Plots: medians against the varied value, the band (or bar) is the spread over seeds (a 95% interval "
        f"from {stats.MIN_FOR_CI} seeds on, the range below); an x marks a median that did not reach the target."])
    for i, found_ in enumerate(found, 1):
        section.tables[plain(f"study {i}: {study.caption(found_)}")] = study.to_table(study.summarize(found_), found_)
        for key in found_.varied:
            section.images[plain(f"study {i}: {found_.title}, {key}")] = study.plot(found_, key)
    return section


def _plots(data: compare.Pool) -> tuple[Section, dict[str, tuple[Callable[..., bytes], tuple]]]:
    """The plots section without its images, and {caption: (plot function, its arguments)} to draw them
    (`plots.Drawing`: the functions and arguments pickle)."""
    section = Section("Plots", notes=[
        f"Learning curves: the target metric against training time (eval time excluded), one line per seed "
        f"(the first {CURVES_PER_SERIES} seeds of each model or machine). "
        f"Time-to-target: median with its spread (a 95% interval from {stats.MIN_FOR_CI} seeds on, the range "
        "below; none for one seed), dots are seeds; 'not reached' where the median is not finite. "
        "Quality against time: final quality against training time per run; the line joins the medians "
        "that no other model/machine beats on both (Pareto front). "
        "Speed profile: median throughput and utilisation per model and machine, dots are seeds, the same "
        "spread (none for one seed)."])
    by_id = {r["run_id"]: r for r in data.records}
    frame = data.frame
    series = SeriesName(frame["hardware"].nunique() > 1, frame["model"].nunique() > 1)
    drawn = [c for c in plots.PLOT_COLUMNS if c in frame]
    fewer: list[str] = []
    figures: dict[str, tuple[Callable[..., bytes], tuple]] = {}
    for key, group in frame.groupby(compare.ACROSS_MODELS, dropna=False, sort=True):  # one group per task
        title = plain(f"{key[0]} v{key[1]} ({key[2]}, {key[3]})")
        if not isinstance(key[compare.ACROSS_MODELS.index("target_metric")], str):  # speed: no target, no curves
            figures[f"{title}: throughput and utilisation"] = (plots.speed, (group[drawn], series, title))
            continue
        ordered = group.sort_values(["seed", "run_id"])[["run_id", *plots.SERIES_COLUMNS]].itertuples(index=False)
        labelled = [(series(row), by_id[row.run_id]) for row in ordered]
        per_series = curves_per_series(len({label for label, _ in labelled}))
        runs = _first_per_series(labelled, per_series)
        if len(runs) < len(_first_per_series(labelled, CURVES_PER_SERIES)):
            fewer.append(f"{title} ({per_series})")
        curves = [(label, {k: record.get(k) for k in ("curve", "target")}) for label, record in runs]
        figures[f"{title}: learning curves"] = (plots.learning_curves, (curves, title))
        figures[f"{title}: time to target"] = (plots.time_to_target, (group[drawn], series, title))
        figures[f"{title}: quality against time"] = (plots.quality_vs_time, (group[drawn], series, title))
    if fewer:
        section.notes.append(f"Learning curves of many models or machines show at most {CURVES_PER_FIGURE} lines "
                             f"per plot, so fewer seeds of each (seeds per series in brackets): {', '.join(fewer)}.")
    return section, figures


CURVES_PER_SERIES = 10  # learning curves drawn per model or machine: more are unreadable, and slow to draw
CURVES_PER_FIGURE = 50  # and per plot: a figure of ten series shows five seeds of each


def curves_per_series(series: int) -> int:
    """How many runs of each of `series` series a learning-curve plot draws: CURVES_PER_SERIES, fewer
    where that would put more than CURVES_PER_FIGURE lines into the plot, and never none."""
    return max(1, min(CURVES_PER_SERIES, CURVES_PER_FIGURE // max(1, series)))


def _first_per_series(runs: list[tuple[str, dict]], limit: int) -> list[tuple[str, dict]]:
    """At most `limit` runs of each series, in the order given (the lowest seeds first)."""
    counts: dict[str, int] = {}
    kept = []
    for label, record in runs:
        counts[label] = counts.get(label, 0) + 1
        if counts[label] <= limit:
            kept.append((label, record))
    return kept


@dataclass(frozen=True)
class SeriesName:
    """How a run is named in a legend: its model, its machine, or both (only what varies). A class, not
    a closure, so that figures drawn in worker processes (`plots.Drawing`) name series the same way."""

    several_machines: bool
    several_models: bool

    def __call__(self, row) -> str:
        if self.several_machines and self.several_models:
            return plain(f"{row.model} @ {row.hardware}")
        return plain(row.hardware) if self.several_machines else plain(row.model)


def _environment(data: compare.Pool) -> Section:
    """Hardware and software fingerprint per machine label; differing values within one label are all shown."""
    per_label: dict[str, dict[str, set[str]]] = {}
    for r in data.records:
        label = (r.get("hardware") or {}).get("label") or "(no label)"
        fields = per_label.setdefault(label, {})
        for part, key in _ENV_FIELDS:
            value = (r.get(part) or {}).get(key)
            fields.setdefault(f"{part}.{key}", set()).add("-" if value is None else str(value))
    notes = []
    columns = {}
    for label, fields in sorted(per_label.items()):
        columns[label] = {name: " | ".join(sorted(values)) for name, values in fields.items()}
        mixed = [name for name, values in fields.items() if len(values) > 1 and name != "software.git_commit"]
        if mixed:
            notes.append(f"label {label!r} covers runs whose {', '.join(mixed)} differ: check it is one machine")
    table = pd.DataFrame(columns).reset_index(names="field") if columns else pd.DataFrame()
    return Section("Environment", notes=notes, tables={"machines": table})


def _header(paths: list[Path], data: compare.Pool) -> list[str]:
    frame = data.frame
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    counts = (f"{len(frame)} runs fit for comparison ({frame['task'].nunique()} tasks, "
              f"{frame['model'].nunique()} models, {frame['hardware'].nunique()} machines)") if not frame.empty \
        else "no runs fit for comparison"
    return [f"Generated {when} from {', '.join(map(str, paths))}.",
            f"{len({r['run_id'] for r in data.records})} distinct records; {counts}."]


def to_html(header: list[str], sections: list[Section]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>dlbench report</title>", f"<style>{_STYLE}</style></head><body>", "<h1>dlbench report</h1>"]
    parts += [f'<p class="note">{html.escape(line)}</p>' for line in header]
    parts.append("<ul>" + "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>'
                                  for i, s in enumerate(sections)) + "</ul>")
    for i, section in enumerate(sections):
        parts.append(f'<h2 id="s{i}">{html.escape(section.title)}</h2>')
        cls = "warn" if section.title == "Warnings" else "note"
        parts += [f'<p class="{cls}">{html.escape(line)}</p>' for line in section.notes]
        for name, table in section.tables.items():
            parts.append(f"<h3>{html.escape(name)}</h3>")
            parts.append(table.to_html(index=False, border=0, na_rep="-") if not table.empty
                         else "<p>(no comparable runs)</p>")
        parts += [f'<p class="note">{html.escape(line)}</p>' for line in section.after]
        if section.images:
            parts.append('<div class="plots">')
            parts += [f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{plots.b64(png)}">'
                      f"<figcaption class=\"note\">{html.escape(caption)}</figcaption></figure>"
                      for caption, png in section.images.items()]
            parts.append("</div>")
    parts.append("</body></html>")
    return clean("\n".join(parts) + "\n")  # escaped above; bidi controls and lone surrogates shown as U+FFFD


def to_markdown(header: list[str], sections: list[Section]) -> str:
    """The report as Markdown: every text from records escaped (suite.results.safetext.markdown: no raw HTML)."""
    lines = ["# dlbench report", "", *map(markdown, header), ""]
    for section in sections:
        lines += [f"## {markdown(section.title)}", ""]
        lines += [f"- {markdown(note)}" for note in section.notes]
        for name, table in section.tables.items():
            lines += ["", f"### {markdown(name)}", "", markdown_table(table)]
        lines += [""] + [f"- {markdown(note)}" for note in section.after] if section.after else []
        if section.images:
            lines.append(f"({len(section.images)} plots: see the HTML report)")
        lines.append("")
    return "\n".join(lines)
