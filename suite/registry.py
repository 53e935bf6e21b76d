"""The task registry: `@register_task` on a Task subclass, lookup with helpful errors.

Tasks come from three places: the modules of the `tasks` package (imported
once by `load_tasks`), the entry-point group `dlbench.tasks` (plug-ins
installed as packages), and modules named with `--tasks-from`.
A task module that cannot be imported (a missing optional dependency) does
not break the others: it is remembered in `UNAVAILABLE` with the reason,
and a run of it becomes a `skipped` record.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import pkgutil
from typing import Iterable, Mapping, TypeVar

from suite.errors import DlbenchError, UnknownNameError
from suite.task import Task

TASKS: dict[str, type[Task]] = {}
UNAVAILABLE: dict[str, str] = {}  # module name -> why it could not be imported
_loaded = False

T = TypeVar("T", bound=type[Task])


class DuplicateTaskError(DlbenchError):
    """Two tasks registered under one name."""


def register_task(cls: T) -> T:
    """Class decorator: add a Task subclass to the registry under `cls.name`."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise DlbenchError(f"{cls.__qualname__}: set a class attribute `name` before @register_task")
    if name in TASKS and TASKS[name] is not cls:
        raise DuplicateTaskError(
            f"task name {name!r} is registered twice ({TASKS[name].__module__} and {cls.__module__}): rename one"
        )
    if cls.default_model not in cls.models:
        raise DlbenchError(f"task {name!r}: default_model {cls.default_model!r} is not one of its models")
    TASKS[name] = cls
    return cls


def check_name(name: str, known: Mapping[str, object] | Iterable[str], what: str) -> None:
    """Raise UnknownNameError listing close matches and every known name."""
    names = sorted(known)
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownNameError(f"unknown {what} {name!r}: {hint}known: {', '.join(names) or '(none)'}")


def get_task(name: str) -> type[Task]:
    load_tasks()
    if name not in TASKS:
        for module, reason in UNAVAILABLE.items():
            if module.rsplit(".", 1)[-1] == name:
                raise UnknownNameError(f"task {name!r} is not available: {reason}")
    check_name(name, TASKS, "task")
    return TASKS[name]


def load_tasks(extra_modules: Iterable[str] = ()) -> dict[str, type[Task]]:
    """Import the built-in task modules, plug-in entry points and `extra_modules`."""
    global _loaded
    if not _loaded:
        import tasks

        for info in pkgutil.iter_modules(tasks.__path__):
            if not info.ispkg and not info.name.startswith("_"):  # packages hold shared domain code
                _import(f"tasks.{info.name}")
        for ep in importlib.metadata.entry_points(group="dlbench.tasks"):
            try:
                ep.load()
            except ImportError as exc:
                UNAVAILABLE[ep.value] = _one_line(exc)
            except Exception as exc:  # noqa: BLE001 - a broken plug-in is an unavailable task, not a crash
                UNAVAILABLE[ep.value] = f"{type(exc).__name__} on import: {_one_line(exc)}"
        _loaded = True
    for module in extra_modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise DlbenchError(f"--tasks-from {module!r}: cannot import it ({_one_line(exc)})") from None
        except DlbenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a module that raises on import is bad input, one line
            raise DlbenchError(f"--tasks-from {module!r}: importing it raised {type(exc).__name__}: "
                               f"{_one_line(exc)}") from None
    return TASKS


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        UNAVAILABLE[module] = _one_line(exc)


def _one_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
