"""Errors the user can act on. Each message is one line naming the thing and the fix."""
from __future__ import annotations

import difflib
import os
import sys
from typing import Any, Callable, Iterable, Mapping


class DlbenchError(Exception):
    """Base of every user-facing error: the CLI prints its message, no traceback."""


class ConfigError(DlbenchError, ValueError):
    """A configuration value breaks a rule: names the field, the value and the rule."""

    def __init__(self, field: str, value: Any, rule: str):
        self.field, self.value, self.rule = field, value, rule
        super().__init__(f"{field}={value!r}: {rule}")


class UnknownNameError(DlbenchError, KeyError):
    """A task, model or profile name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataError(DlbenchError, RuntimeError):
    """Data is missing or corrupt: the message says where it was looked for and how to get it."""


class MissingExtraError(DlbenchError, ImportError):
    """An optional dependency is not installed: the message names the extra to install."""


class SplitUnavailable(DlbenchError):
    """An extra evaluation set cannot be built on this machine (its synthesiser or package is missing):
    the message says why and the install line. The run goes on without it (`suite.taskapi.data.load_eval_splits`)."""


class SkipRun(DlbenchError):
    """This run cannot happen on this machine (no CUDA, missing extra): record it as skipped."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: ends the run like Ctrl-C (an `interrupted` record), then the suite stops."""


def check_name(name: str, known: Mapping[str, object] | Iterable[str], what: str) -> None:
    """Raise UnknownNameError listing close matches and every known name."""
    names = sorted(known)
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownNameError(f"unknown {what} {name!r}: {hint}known: {', '.join(names) or '(none)'}")


def script_exit_code(main: Callable[[], int | None], prog: str) -> int:
    """Run a script's `main()` (bench/, scripts/) and give its exit status: bad input it raises as a
    DlbenchError (an unknown task or model, a value out of range) is one line on stderr and status 2,
    as `dlbench` and run_all.py print it, instead of a traceback; a closed stdout pipe ends it quietly."""
    try:
        return main() or 0
    except DlbenchError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return closed_pipe_exit_code()


def closed_pipe_exit_code() -> int:
    """The reader of stdout left (`... | head`): nothing more to say, nor at exit when Python flushes
    stdout; the status a shell gives a command whose pipe closed (128 + SIGPIPE)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141
