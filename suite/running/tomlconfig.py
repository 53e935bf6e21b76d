"""`run_all.py --config FILE.toml`: every flag from a TOML file; flags on the command line override it.

The file's keys are the flags' names without the dashes (`hardware_label` or
`hardware-label`), each with a value of the flag's type:

    profile = "smoke"
    tasks = ["image_classification", "sentiment"]   # or "image_classification,sentiment"
    seeds = 3
    compile = true
    set = ["recipe.lr=0.01"]                        # or a table: [set] recipe.lr = 0.01

The file's values become the parser's defaults, so a flag given on the
command line wins; `--set` items of both add up, the command line's last
for a key they share. An unknown key, a value of the wrong type or one the
options reject is one line naming the file and the key (DlbenchError: exit
2); a file that is not TOML names the line tomllib stopped at.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import tomllib
from pathlib import Path
from typing import Any

from suite.errors import ConfigError, DlbenchError

FLAG = "--config"


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(FLAG, type=Path, default=None, metavar="FILE.toml",
                        help="take every flag from this TOML file (keys: the flags' names, e.g. profile = "
                             "\"smoke\", seeds = 3, tasks = [\"a\", \"b\"]); flags given here override it")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None, cls: type) -> argparse.Namespace:
    """Parse `argv` with `parser`, the values of `--config FILE` (if given) as the defaults."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # as the parser it serves
    pre.add_argument(FLAG, type=Path, default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config is not None:
        parser.set_defaults(**load(known.config, cls))
    return parser.parse_args(argv)


def load(path: Path, cls: type) -> dict[str, Any]:
    """The options in TOML file `path` as {field: value} of dataclass `cls`, checked as `cls` checks them."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DlbenchError(f"{FLAG} {path}: no such file: give the path of a TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DlbenchError(f"{FLAG} {path}: not readable ({exc})") from None
    except tomllib.TOMLDecodeError as exc:  # its message names the line and column
        raise DlbenchError(f"{FLAG} {path}: not valid TOML: {exc}") from None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DlbenchError(f"{FLAG} {path}: unknown key {key!r}{hint}; valid keys: {', '.join(fields)}")
        values[name] = _value(fields[name], key, value, path)
    try:
        cls(**values)  # the options' own rules (seeds >= 1, a known device, ...), named by field
    except ConfigError as exc:
        raise DlbenchError(f"{FLAG} {path}: {exc}") from None
    return values


def _value(f: dataclasses.Field, key: str, value: Any, path: Path) -> Any:
    """`value` of TOML key `key` as field `f` takes it; DlbenchError naming the key and the type otherwise."""
    def wrong(expected: str) -> DlbenchError:
        return DlbenchError(f"{FLAG} {path}: {key} = {value!r}: must be {expected}")

    kind = str(f.type)
    if f.metadata.get("append"):  # --set: a list of "NAMESPACE.KEY=VALUE", or a table of them
        if isinstance(value, dict):
            return [f"{name}={_text(item)}" for name, item in _flatten(value).items()]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        raise wrong('a list of "NAMESPACE.KEY=VALUE" strings or a table of NAMESPACE.KEY = value')
    if f.metadata.get("list_of"):
        if isinstance(value, str):
            value = value.split(",")
        if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            raise wrong("a list of names or one comma-separated string")
        return [item.strip() for item in value if item.strip()]
    if kind in ("bool", str(bool)):
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if "int" in kind:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if "float" in kind:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    if not isinstance(value, str):
        raise wrong("a string")
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise wrong(f"one of {', '.join(choices)}")
    return Path(value) if "Path" in kind else value


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"recipe": {"lr": 0.01}} -> {"recipe.lr": 0.01} (TOML reads a dotted key as nested tables)."""
    flat = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        flat.update(_flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return flat


def _text(value: Any) -> str:
    """A TOML value as `--set` text: true/false as the command line writes them, numbers as written."""
    return str(value).lower() if isinstance(value, bool) else str(value)
