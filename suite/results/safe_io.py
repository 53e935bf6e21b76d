"""Careful file I/O for results folders: bounded reads, atomic writes, plain text.

- `read_json`: a regular file only (no FIFO, device or symlink to one), at
  most `MAX_RECORD_BYTES`, parsed without RecursionError or huge-int errors
  escaping: anything else raises `UnreadableFile` with a one-line reason.
- `atomic_write_text` / `atomic_write_csv`: temp file in the same folder,
  fsync, `os.replace`; a failed write leaves the previous file whole. Files
  get the umask's mode (mkstemp's 0600 would hide them from colleagues).
- `check_writable`: a results folder is writable before the first run.
- `plain` (from suite.results.safetext): one line of text from records, controls and bidi marks out.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from suite.results.safetext import clean, plain, without_surrogates  # noqa: F401 - plain is used from here too

MAX_RECORD_BYTES = 32 * 1024 * 1024  # a record with a long curve is well under 1 MB

try:  # parses a record several times faster than the json module, and in less memory
    import orjson
except ImportError:  # a core dependency; without it the json module parses alone
    orjson = None
# orjson reads an integer past 64 bits as a float where the json module keeps it exact: such a document,
# and any orjson rejects (NaN, lone surrogates, deep nesting), is parsed by the json module, which says why.
# (The search for 19 digits in a row runs on a copy with every digit made "0": a substring search is
# several times faster than the regular expression `[0-9]{19}` over a whole record.)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


class UnreadableFile(Exception):
    """A file that cannot be read as a JSON document; the message is one line."""


def read_json(path: Path, max_bytes: int | None = None, info: os.stat_result | None = None) -> Any:
    """The JSON document in `path`, read safely (see the module docstring); `info` is the caller's
    `os.stat(path)` when it has one, so the file is not stated twice."""
    max_bytes = MAX_RECORD_BYTES if max_bytes is None else max_bytes
    try:
        info = info or os.stat(path)  # follows a symlink: its target must be a regular file too
    except OSError as exc:
        raise UnreadableFile(f"cannot stat it ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile("not a regular file (FIFO, device, socket or folder)")
    if info.st_size > max_bytes:
        raise UnreadableFile(f"{info.st_size} bytes, over the {max_bytes}-byte limit for a record")
    try:
        # O_NONBLOCK: a file swapped for a FIFO after the stat cannot hang the open.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode):
                raise UnreadableFile("not a regular file (FIFO, device, socket or folder)")
            data = _read_at_most(fd, now.st_size, max_bytes + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise UnreadableFile(f"cannot read it ({exc.strerror or type(exc).__name__})") from None
    if len(data) > max_bytes:
        raise UnreadableFile(f"over the {max_bytes}-byte limit for a record")
    try:
        doc = _fast_loads(data)
        if doc is None:
            doc = json.loads(data.decode("utf-8"))
        # `\udXXX` escapes are how JSON writes characters beyond U+FFFF (valid pairs) and lone surrogates.
        return without_surrogates(doc) if b"\\ud" in data or b"\\uD" in data else doc
    except UnicodeDecodeError:
        raise UnreadableFile("not UTF-8 text") from None
    except RecursionError:
        raise UnreadableFile("JSON nested too deep") from None
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise UnreadableFile(f"not usable JSON ({plain(str(exc))[:80]})") from None


def _read_at_most(fd: int, expected: int, limit: int) -> bytes:
    """Up to `limit` bytes from `fd` (to its end), asking first for the `expected` size and one byte more:
    one read for a file that did not grow, and no buffer of `limit` bytes allocated for a small one."""
    chunks, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(limit - size, expected + 1 - size if size <= expected else 65536))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _fast_loads(data: bytes) -> Any:
    """The document orjson parses from `data` when it reads it exactly as the json module would, else None
    (`null` itself included: the json module parses it again)."""
    if orjson is None or _LONG_RUN in data.translate(_DIGITS_AS_ZERO):
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def umask_mode(base: int = 0o666) -> int:
    """`base` less the process umask: the mode open() would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` via a temp file in the same folder, fsync and os.replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """`text` as UTF-8; a lone surrogate (no encoding can write one) or a bidi control as U+FFFD (suite.results.safetext)."""
    return atomic_write_bytes(path, clean(text).encode("utf-8"))


def atomic_write_csv(frame, path: Path) -> Path:
    """A pandas frame as CSV, written atomically."""
    return atomic_write_text(path, frame.to_csv(index=False))


def check_writable(folder: Path, what: str = "results folder") -> None:
    """Raise DlbenchError (one line) unless files can be created in `folder` (made if missing)."""
    from suite.errors import DlbenchError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".dlbench-write-test.", suffix=".tmp", dir=folder)
        try:
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as exc:
        raise DlbenchError(f"{what} {folder} is not writable ({exc.strerror or type(exc).__name__}): "
                           "give a writable folder with --results") from None
