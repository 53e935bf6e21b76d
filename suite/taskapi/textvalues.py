"""Text from the command line -> a Python value: the one parser every setting uses.

`parse_value(text)` reads what the text spells, for settings whose type is not declared
(a `model.*` keyword, checked afterwards against its factory's default): true/false,
yes/no, on/off -> bool; none/null -> None; then an int, a float, else the text itself.
`parse_as(text, kind, name)` converts to a declared type (a recipe field, a task option, a
command-line flag): bool also takes 1/0, an int must be written as one, a float may be
written as an int. Every spelling is case-insensitive.

Numbers must be finite: NaN or infinity is no learning rate, fraction or width, so
`parse_as` refuses them and `check_finite` names them for values parsed untyped.
"""
from __future__ import annotations

import math
from typing import Any

from suite.errors import ConfigError

TRUE = ("true", "yes", "on")
FALSE = ("false", "no", "off")
NONE = ("none", "null")


def parse_value(text: str) -> Any:
    """Command-line text -> bool, None, int, float, else the text itself (see the module docstring)."""
    word = text.strip().lower()
    if word in TRUE or word in FALSE:
        return word in TRUE
    if word in NONE:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_as(text: str, kind: type, name: str) -> Any:
    """`text` as a value of `kind` (bool, int, float or str); ConfigError naming `name`, the text and the rule."""
    if kind is str:
        return text
    word = text.strip().lower()
    if kind is bool:
        if word in TRUE + ("1",) or word in FALSE + ("0",):
            return word in TRUE + ("1",)
        raise ConfigError(name, text, "wants true or false")
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(name, text, f"wants {'an' if kind is int else 'a'} {kind.__name__}") from None
    return check_finite(name, text, value)


def check_finite(name: str, text: Any, value: Any) -> Any:
    """`value` itself; ConfigError when it is a NaN or infinite float."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(name, text, "must be a finite number")
    return value
