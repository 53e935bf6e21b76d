"""The settings that key a comparison cell beyond task, profile, dataset and target.

Two runs share a cell (one median, one interval) only when they computed the
same thing the same way. Besides the task's own identity, that takes:
the numeric precision the run actually used (what `--precision auto` became
on that machine: bf16 and fp32 never pool, and a table says which ran),
`--compile`, `--cuda-graphs` (a record without it never captured: "off"),
the data-parallel world size, the pretrained encoder a fine-tuning task
started from (its name and a hash of its weights), the
content of the dataset (a fingerprint a loader puts into `data_info`),
the resolved configuration without the seed (`config_key`: recipe, budget,
task options and overrides, so a recipe that changed between commits keys
a new cell), and the recipe override (`variant`, shown as text).

The torch thread count (`host.torch_threads`) is part of the machine: runs
of one machine label with different thread counts are told apart by
`machine_label`, while machines with different core counts still compare
side by side.

`cell_settings(record)` reads them from any record, old or new: a field an
older record lacks reads as "-" (unknown), so old runs still load and never
pool with new ones that state the setting. Every value is a short string, so
frames group on them without NaN surprises. `rerun_key` says which records
are one run done twice (same cell, machine, seed and commit).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import PurePath
from typing import Any

from suite.results.records import SORTED_JSON

KEYED = ["precision", "compile", "cuda_graphs", "world_size", "pretrained", "data", "config", "variant"]
# The KEYED settings but the variant (and the configuration, which holds the variant's values): views that
# set a model's variants side by side (families, studies) key their groups on these and treat each variant
# as a row within the group.
SETTINGS_BUT_VARIANT = [k for k in KEYED if k not in ("variant", "config")]
UNKNOWN = "-"
# Parts of a resolved config that are not "what was computed": the seed (cells pool seeds), where it ran
# (the machine is a table's own dimension), the settings keyed on their own above, and the target's
# source, which documents the number.
NOT_CONFIGURATION = ("seed", "device", "precision", "precision_request", "compile", "cuda_graphs", "world_size")


def remembered(record: dict[str, Any], key: str, compute) -> Any:
    """`compute(record)`, kept under `key` on a record read from a file (it has `_path`; underscored keys
    are never written), so the tables that ask again on one pool pay once; a record in the making is
    never marked."""
    value = record.get(key)
    if value is None:
        value = compute(record)
        if "_path" in record:
            record[key] = value
    return value


def cell_settings(record: dict[str, Any]) -> dict[str, str]:
    """{setting: short string} for every name in KEYED.

    A record read from a file (it has `_path`) keeps its settings under `_cells` (never written):
    readers do not change records, and every table asks again.
    """
    return dict(remembered(record, "_cells", _cell_settings))


def _cell_settings(record: dict[str, Any]) -> dict[str, str]:
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    world = record.get("world_size", config.get("world_size"))
    compiled = config.get("compile")
    return {
        "precision": precision_key(config),
        "compile": UNKNOWN if compiled is None else ("compile" if compiled else "eager"),
        "cuda_graphs": "on" if config.get("cuda_graphs") else "off",
        "world_size": _text(world if world is not None else 1),
        "pretrained": pretrained_key(record),
        "data": data_key(record),
        "config": config_key(record),
        "variant": variant_key(record),
    }


def precision_key(config: dict[str, Any]) -> str:
    """The precision the run computed in ("bf16", "fp32"), whether it was asked for or `auto` chose it."""
    return _text(config.get("precision"))


def config_key(record: dict[str, Any]) -> str:
    """A short hash of the resolved configuration without the seed and the separately keyed settings
    (NOT_CONFIGURATION, the target's source, the pretrained encoder's path, the speed profile's budget);
    "-" for a record without one."""
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    kept = {k: v for k, v in config.items() if k not in NOT_CONFIGURATION}
    if not kept or set(kept) <= {"profile"}:  # a run that never started records only profile and seed
        return UNKNOWN
    if isinstance(kept.get("target"), dict):
        kept["target"] = {k: v for k, v in kept["target"].items() if k != "source"}
    if kept.get("profile") == "speed":  # its budget caps how long throughput is timed, not what is trained:
        kept.pop("budget", None)  # figures timed for 50 steps or for a few seconds are one quantity
    for part, key in (("options", "pretrained"), ("overrides", "task.pretrained")):
        if isinstance(kept.get(part), dict) and key in kept[part]:
            kept[part] = {k: v for k, v in kept[part].items() if k != key}  # pretrained_key names it
    return hashlib.sha256(SORTED_JSON.encode(kept).encode()).hexdigest()[:8]


def threads_key(record: dict[str, Any]) -> str:
    """The torch thread count the run used ("-" when not recorded)."""
    host = record.get("host") if isinstance(record.get("host"), dict) else {}
    return _text(host.get("torch_threads"))


def rerun_key(record: dict[str, Any]) -> tuple:
    """What makes two records one run done twice: the same task, target, machine, thread count, torch,
    dlbench version and git commit, every keyed setting, and the same seed (kept under `_rerun` on a
    record read from a file, like `_cells`)."""
    return remembered(record, "_rerun", _rerun_key)


def _rerun_key(record: dict[str, Any]) -> tuple:
    return seed_key(record) + code_key(record)


def code_key(record: dict[str, Any]) -> tuple:
    """The code a run ran: torch, dlbench version and git commit."""
    software = record.get("software") if isinstance(record.get("software"), dict) else {}
    return software.get("torch"), software.get("dlbench"), software.get("git_commit")


def seed_key(record: dict[str, Any]) -> tuple:
    """One seed of one cell on one machine: task, target, machine, thread count, every keyed setting and
    the seed (`rerun_key` without the code)."""
    target = record.get("target") if isinstance(record.get("target"), dict) else {}
    hardware = record.get("hardware") if isinstance(record.get("hardware"), dict) else {}
    settings = cell_settings(record)
    return (record.get("task"), record.get("task_version"), record.get("model"), record.get("profile"),
            record.get("dataset"), target.get("metric"), target.get("value"), target.get("higher_is_better"),
            *(hardware.get(k) for k in ("label", "device", "device_name", "cpu", "cores", "gpus", "hostname")),
            threads_key(record), *(settings[k] for k in KEYED), record.get("seed"))


def pretrained_key(record: dict[str, Any]) -> str:
    """"name@hash8" of the encoder a run fine-tuned, "-" when it started from scratch.

    The name comes from the loader's data_info ("pretrained"), else from the
    config wherever the option lives (`pretrained` today, `task.pretrained`
    or an override later); the hash is data_info's "pretrained_sha256".
    """
    name, digest = None, None
    for info in _splits(record):
        name = name or info.get("pretrained")
        digest = digest or info.get("pretrained_sha256")
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    task_conf = config.get("task") if isinstance(config.get("task"), dict) else {}
    overrides = config.get("overrides") if isinstance(config.get("overrides"), dict) else {}
    name = name or config.get("pretrained") or task_conf.get("pretrained") or overrides.get("task.pretrained")
    if not name:
        return UNKNOWN
    path = PurePath(str(name))
    short = "/".join(path.parts[-2:]) if path.is_absolute() else str(name)  # a folder: its last two parts
    return f"{short}@{str(digest)[:8]}" if digest else short


def data_key(record: dict[str, Any]) -> str:
    """A short hash of the dataset fingerprints the loaders recorded per split, "-" when none was recorded."""
    prints = {split: info["fingerprint"] for split, info in _named_splits(record) if info.get("fingerprint")}
    if not prints:
        return UNKNOWN
    return hashlib.sha256(json.dumps(prints, sort_keys=True).encode()).hexdigest()[:8]


def variant_key(record: dict[str, Any]) -> str:
    """The recipe variant label and the sorted `--set` overrides ("wide; lr=0.1"), "-" for the default recipe."""
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    label = record.get("variant") or config.get("variant")
    overrides = config.get("overrides") if isinstance(config.get("overrides"), dict) else {}
    # A `--set` label ("recipe.lr=0.01,model.depth=4") only repeats the overrides: shown once, from them.
    repeats = label and all(part.partition("=")[0] in overrides for part in str(label).split(","))
    parts = [str(label)] if label and not repeats else []
    parts += [f"{k}={_text(v)}" for k, v in sorted(overrides.items()) if k != "task.pretrained"]
    return "; ".join(parts) or UNKNOWN


def differing(rows: list[dict[str, str]]) -> list[str]:
    """The KEYED settings whose values differ among `rows` (cell_settings dicts)."""
    return [k for k in KEYED if len({r[k] for r in rows}) > 1]


def _named_splits(record: dict[str, Any]):
    info = record.get("data_info")
    if not isinstance(info, dict):
        return []
    return sorted((str(k), v) for k, v in info.items() if isinstance(v, dict))


def _splits(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for _, v in _named_splits(record)]


def value_text(value: Any) -> str:
    """A setting's value as cells show it: "-" for none, 1.0 -> "1" (what suite.results.study groups variants on)."""
    return _text(value)


def _text(value: Any) -> str:
    if value is None or value == "":
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
