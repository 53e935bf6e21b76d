"""The harness's layout: groups that show the architecture, small modules, a results side without torch,
and the public task API in `suite` itself."""
from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suite"
GROUPS = ("taskapi", "running", "training", "measuring", "results", "reporting", "cli")
TOP_LEVEL = {"__init__.py", "api.py", "errors.py", "version.py"}  # shared by every group
TORCH_FREE = ("suite.results", "suite.reporting", "suite.cli")


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in SUITE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_suite_holds_its_groups_and_a_few_shared_modules():
    loose = {p.name for p in SUITE.glob("*.py")}
    assert loose == TOP_LEVEL
    for group in GROUPS:
        init = SUITE / group / "__init__.py"
        assert init.is_file() and ast.get_docstring(ast.parse(init.read_text())), f"{group} has no docstring"


def _modules(package: str) -> list[str]:
    root = SUITE / package.split(".", 1)[1]
    return [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(root)]) if m.name != "__main__"]


def test_the_results_side_imports_no_torch():
    modules = [m for package in TORCH_FREE for m in _modules(package)] + ["suite", "suite.errors", "suite.version"]
    code = ("import importlib, json, sys\n"
            "for name in json.loads(sys.argv[1]):\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))))\n")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(modules)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert len(modules) > 20  # every module of results, reporting and cli was imported


def test_the_public_task_api_comes_from_suite_itself():
    from suite.taskapi.registry import register_task
    from suite.taskapi.spec import Target
    from suite.taskapi.task import Task

    assert suite.Task is Task and suite.Target is Target and suite.register_task is register_task
    for name in suite.__all__:
        assert getattr(suite, name) is not None, name
    assert set(suite.__all__) <= set(dir(suite))


def test_an_unknown_name_in_suite_is_an_attribute_error():
    try:
        suite.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("suite.NoSuchThing resolved")


# Third-party modules a bench script needs only for its own comparison, installed by its extra.
OPTIONAL_BENCH_MODULES = {"stable_baselines3", "ray"}


def test_every_import_from_suite_in_the_repository_resolves():
    """bench/ scripts are not imported by any other test: a moved name would rot there unseen."""
    import importlib

    missing = []
    for path in sorted((ROOT / "bench").glob("*.py")) + sorted((ROOT / "scripts").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "suite":
                module = importlib.import_module(node.module)
                missing += [f"{path.name}:{node.lineno} {node.module}.{a.name}" for a in node.names
                            if not hasattr(module, a.name)
                            and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
    assert not missing, missing


def test_every_sibling_import_in_bench_and_scripts_resolves():
    """A script that imports a module beside it (`from quick_recipes import line`) breaks when that
    module goes: each such name must be a file in the same folder or an installed module."""
    import importlib.machinery

    missing = []
    for folder in ("bench", "scripts"):
        for path in sorted((ROOT / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                for name in filter(None, names):
                    top = name.split(".")[0]
                    if (ROOT / folder / f"{top}.py").exists() or top in ("suite", "tasks"):
                        continue
                    # sys.path's own finder, not the meta path: setuptools' distutils shim answers a lookup of
                    # "pip" by dropping every distutils module already imported, which breaks inductor's
                    # compiles in the tests that run after this one.
                    found = top in sys.stdlib_module_names or importlib.machinery.PathFinder.find_spec(top) is not None
                    if not found and top not in OPTIONAL_BENCH_MODULES:
                        missing.append(f"{folder}/{path.name}:{node.lineno} {name}")
    assert not missing, missing
