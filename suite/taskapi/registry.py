"""The task registry: `@register_task` on a Task or RLTask subclass, lookup with helpful errors.

Tasks reach the registry in one way: importing the module that defines them
with `@register_task`. `load_tasks` imports what the entry-point group
`dlbench.tasks` names (the built-in tasks declare theirs in pyproject.toml,
exactly as a plug-in package does) and the modules named with `--tasks-from`.
`suite/` itself never imports `tasks/`. An entry point that cannot be loaded
(a missing optional dependency) does not break the others: it is remembered
in `UNAVAILABLE` with the reason, and a run of it becomes a `skipped` record.

Tests reset the registry with `snapshot()` / `restore()` (see tests/conftest.py).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import re
from typing import Any, Iterable, TypeVar

from suite.errors import DlbenchError, UnknownNameError, check_name
from suite.taskapi.task import RLTask, Task, TaskBase, cadence_problem, missing_members

__all__ = ["TASKS", "UNAVAILABLE", "ENTRY_POINT_GROUP", "DuplicateTaskError", "register_task", "check_name",
           "check_identifier", "get_task", "load_tasks", "entry_point_tasks", "snapshot", "restore", "reset"]

ENTRY_POINT_GROUP = "dlbench.tasks"
TASKS: dict[str, type[TaskBase]] = {}
UNAVAILABLE: dict[str, str] = {}  # entry point value (the module) -> why it could not be loaded
_loaded = False
_DECLARED: dict[str, dict[str, type]] = {}  # module -> the tasks it registered on import; survives `reset`

T = TypeVar("T", bound=type[TaskBase])
# Task and model names become file names, record keys and table rows: identifiers only, so a name can never
# hold a path separator (a plug-in task named "../x" would write its records outside the results folder).
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class DuplicateTaskError(DlbenchError):
    """Two tasks registered under one name."""


def register_task(cls: T) -> T:
    """Class decorator: check `cls` against its contract and add it to the registry under `cls.name`."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise DlbenchError(f"{cls.__qualname__}: set a class attribute `name` before @register_task")
    check_identifier(name, f"task name ({cls.__module__}.{cls.__qualname__})")
    if not (isinstance(cls, type) and issubclass(cls, (Task, RLTask))):
        raise DlbenchError(f"task {name!r}: subclass suite.taskapi.task.Task (supervised) or suite.taskapi.task.RLTask")
    missing = missing_members(cls)
    if missing:
        contract = "RLTask" if issubclass(cls, RLTask) else "Task"
        raise DlbenchError(f"task {name!r} ({cls.__module__}.{cls.__qualname__}) does not implement "
                           f"{', '.join(missing)}: every {contract} must")
    if name in TASKS and TASKS[name] is not cls:
        raise DuplicateTaskError(
            f"task name {name!r} is registered twice ({TASKS[name].__module__} and {cls.__module__}): rename one"
        )
    for model in cls.models:
        check_identifier(model, f"model name of task {name!r}")
    if getattr(cls, "default_model", None) not in cls.models:
        raise DlbenchError(f"task {name!r}: default_model {getattr(cls, 'default_model', None)!r} "
                           "is not one of its models")
    problem = cadence_problem(cls)
    if problem:
        raise DlbenchError(problem)
    TASKS[name] = cls
    _DECLARED.setdefault(cls.__module__, {})[name] = cls
    return cls


def check_identifier(name: Any, what: str) -> None:
    """DlbenchError (one line) unless `name` is a plain identifier of at most 64 characters (NAME)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise DlbenchError(f"{what} {name!r}: use letters, digits and underscores only (a letter or underscore "
                           "first, at most 64): the name becomes file names and table rows")


def get_task(name: str) -> type[TaskBase]:
    load_tasks()
    if name not in TASKS:
        for module, reason in UNAVAILABLE.items():
            if module.rsplit(".", 1)[-1] == name:
                raise UnknownNameError(f"task {name!r} is not available: {reason}")
        if not TASKS and not UNAVAILABLE:
            raise UnknownNameError(f"unknown task {name!r}: no task is registered (no `{ENTRY_POINT_GROUP}` entry "
                                   "points): install dlbench with `pip install -e .` (scripts/setup.sh does)")
    check_name(name, TASKS, "task")
    return TASKS[name]


def load_tasks(extra_modules: Iterable[str] = ()) -> dict[str, type[TaskBase]]:
    """Load the `dlbench.tasks` entry points (once) and import `extra_modules`; return the registry."""
    global _loaded
    if not _loaded:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            module = ep.value.split(":")[0]
            try:
                obj = ep.load()
                if isinstance(obj, type):  # an entry point may name the class; a module registers on import
                    register_task(obj)
            except DuplicateTaskError:
                raise
            # A broken plug-in is an unavailable task (a `skipped` record naming why), not a crash.
            except (ImportError, DlbenchError) as exc:
                UNAVAILABLE[module] = _one_line(exc)
            except Exception as exc:  # noqa: BLE001
                UNAVAILABLE[module] = f"{type(exc).__name__} on import: {_one_line(exc)}"
            except SystemExit as exc:
                UNAVAILABLE[module] = f"called sys.exit({exc.code!r}) on import"
        _loaded = True
    for module in extra_modules:
        try:
            importlib.import_module(module)
            # A module imported before a `reset` does not run its decorators again: register what it declared.
            for cls in _DECLARED.get(module, {}).values():
                register_task(cls)
        except ImportError as exc:
            raise DlbenchError(f"--tasks-from {module!r}: cannot import it ({_one_line(exc)})") from None
        except DlbenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a module that raises on import is bad input, one line
            raise DlbenchError(f"--tasks-from {module!r}: importing it raised {type(exc).__name__}: "
                               f"{_one_line(exc)}") from None
        except SystemExit as exc:
            raise DlbenchError(f"--tasks-from {module!r}: importing it called sys.exit({exc.code!r})") from None
    return TASKS


def entry_point_tasks() -> dict[str, type[TaskBase]]:
    """Only the tasks the `dlbench.tasks` entry points declare (what the contract test covers)."""
    load_tasks()
    declared = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        module = ep.value.split(":")[0]
        declared.add(module)
    return {name: cls for name, cls in TASKS.items() if cls.__module__ in declared}


def snapshot() -> dict[str, Any]:
    """The registry's state, to put back with `restore` (tests)."""
    return {"tasks": dict(TASKS), "unavailable": dict(UNAVAILABLE), "loaded": _loaded}


def restore(state: dict[str, Any]) -> None:
    global _loaded
    TASKS.clear()
    TASKS.update(state["tasks"])
    UNAVAILABLE.clear()
    UNAVAILABLE.update(state["unavailable"])
    _loaded = state["loaded"]


def reset() -> None:
    """Empty the registry; the next `load_tasks` loads the entry points again."""
    restore({"tasks": {}, "unavailable": {}, "loaded": False})


def _one_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
