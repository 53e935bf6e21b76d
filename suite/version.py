"""`--version`: the installed dlbench version and, in a git checkout, its commit (torch is not imported)."""
from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import suite


def package_version() -> str:
    """The version pip installed (importlib.metadata); the source's own when dlbench runs uninstalled."""
    try:
        return metadata.version("dlbench")
    except metadata.PackageNotFoundError:
        return suite.__version__


def git_commit() -> str | None:
    """HEAD of the checkout this code runs from, or None outside git (an installed wheel)."""
    root = Path(suite.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def version_line(prog: str) -> str:
    commit = git_commit()
    return f"{prog} {package_version()}" + (f" (git {commit})" if commit else "")
