"""Text from records made safe for each output: terminal, Markdown, HTML, CSV and plots.

Record fields are free text (labels, model names, errors, paths) and may hold what breaks
or misleads an output: lone surrogates (no encoding can write them: the report crashed on
one), control characters (terminal escapes; newlines that end a table row early),
bidirectional controls (U+202E shows what follows backwards, so "txt.exe" reads as
"exe.txt") and characters a terminal's encoding lacks. Each function returns text that
cannot break the output it is for; what it replaces stays visible (U+FFFD), never silent.

- `clean`: lone surrogates and bidirectional controls -> U+FFFD; everything else kept.
- `without_surrogates`: a JSON document with U+FFFD for lone surrogates in its strings (what a
  record read back may hold: JSON's `\ud800` escape decodes to one; pandas' text columns refuse it).
- `plain`: `clean`, and control characters -> spaces: one line of text.
- `markdown`: `plain`, `&`, `<`, `>` as entities (no raw HTML), `\\` and `|` escaped (one cell).
- `plot_label`: `plain`, `$` escaped (matplotlib reads text between two `$` as math).
- `encodable`: characters an encoding lacks as backslash escapes (a terminal under LC_ALL=C).
"""
from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
# Marks and embeddings/overrides/isolates that reorder the text around them (Unicode bidi controls).
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean(text: Any) -> str:
    """`str(text)` with lone surrogates and bidirectional controls replaced by U+FFFD."""
    return _BIDI.sub(REPLACEMENT, _SURROGATE.sub(REPLACEMENT, str(text)))


def plain(text: Any) -> str:
    """`text` as one line of plain text: `clean`, and control characters (newlines, escapes) as spaces."""
    return _CONTROL.sub(" ", clean(text))


def markdown(text: Any) -> str:
    """`text` safe inside Markdown, table cells included: one line, no HTML tag or entity, no cell break."""
    out = plain(text).replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace("|", "\\|")


def plot_label(text: Any) -> str:
    """`text` as matplotlib draws it literally: one line, every `$` escaped (no math, no TeX)."""
    return plain(text).replace("$", r"\$")


def encodable(text: str, encoding: str | None) -> str:
    """`text` with what `encoding` cannot write as backslash escapes ("é" -> "\\xe9" in ASCII)."""
    encoding = encoding or "utf-8"
    return text.encode(encoding, "backslashreplace").decode(encoding)


def without_surrogates(doc: Any) -> Any:
    """`doc` (parsed JSON) with every lone surrogate in its strings and keys replaced by U+FFFD."""
    if isinstance(doc, str):
        return _SURROGATE.sub(REPLACEMENT, doc)
    if isinstance(doc, list):
        return [without_surrogates(v) for v in doc]
    if isinstance(doc, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in doc.items()}
    return doc
