"""The settings that key a comparison cell beyond task, profile, dataset and target.

Two runs share a cell (one median, one interval) only when they computed the
same thing the same way. Besides the task's own identity, that takes the
settings a user can change at run time: numeric precision (an explicit
`--precision bf16|fp32`, or "auto": each machine's own policy, so machines
compare at their defaults and a caveat says what auto became where), `--compile`, the
data-parallel world size, the pretrained encoder a fine-tuning task started
from (its name and a hash of its weights), the content of the dataset (a
fingerprint a loader puts into `data_info`, e.g. the manifest's checksum and,
for generated corpora, the synthesiser and its version), and any recipe
override (`variant`, `config.overrides`).

`cell_settings(record)` reads them from any record, old or new: a field an
older record lacks reads as "-" (unknown), so old runs still load and never
pool with new ones that state the setting. Every value is a short string, so
frames group on them without NaN surprises.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import PurePath
from typing import Any

KEYED = ["precision", "compile", "world_size", "pretrained", "data", "variant"]
# The KEYED settings but the variant: views that set a model's variants side by side (families, studies)
# key their groups on these and treat each variant as a row within the group.
SETTINGS_BUT_VARIANT = [k for k in KEYED if k != "variant"]
UNKNOWN = "-"


def cell_settings(record: dict[str, Any]) -> dict[str, str]:
    """{setting: short string} for every name in KEYED."""
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    world = record.get("world_size", config.get("world_size"))
    compiled = config.get("compile")
    return {
        "precision": precision_key(config),
        "compile": UNKNOWN if compiled is None else ("compile" if compiled else "eager"),
        "world_size": _text(world if world is not None else 1),
        "pretrained": pretrained_key(record),
        "data": data_key(record),
        "variant": variant_key(record),
    }


def precision_key(config: dict[str, Any]) -> str:
    """"auto" when the run let the harness choose per device (bf16 on CUDA, fp32 elsewhere), so machines
    compare at their own defaults; else the precision it ran in (older records: the resolved one)."""
    if config.get("precision_request") == "auto":
        return "auto"
    return _text(config.get("precision"))


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
    """A setting's value as cells show it: "-" for none, 1.0 -> "1" (what suite.study groups variants on)."""
    return _text(value)


def _text(value: Any) -> str:
    if value is None or value == "":
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
