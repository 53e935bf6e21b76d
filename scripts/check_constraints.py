"""Does constraints.txt pin every dependency of pyproject.toml inside its range?

    python scripts/check_constraints.py [pyproject.toml] [constraints.txt]

Prints nothing and exits 0 when it does; otherwise one line per package
("constraints.txt: torch==2.10.0 is outside pyproject.toml's range torch>=2.11")
and exit 1. scripts/setup.sh runs it before installing, so a constraints file
that drifted from the ranges stops set-up with the package's name. Needs only
the standard library and pip's vendored `packaging`.
"""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.version import InvalidVersion, Version
except ImportError:  # a bare Python: pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.version import InvalidVersion, Version


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: Path) -> list[Requirement]:
    """Every dependency pyproject.toml names (core and extras), the project's own extras left out."""
    project = tomllib.loads(pyproject.read_text())["project"]
    listed = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        listed += extra
    reqs = [Requirement(text) for text in listed]
    return [r for r in reqs if normalize(r.name) != normalize(project["name"])]


def pins(constraints: Path) -> dict[str, str]:
    """{normalized name: version} of the `name==version` lines."""
    found = {}
    for line in constraints.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = (part.strip() for part in line.split("==", 1))
            found[normalize(name.split("[")[0])] = version.split(";")[0].strip()
    return found


def problems(pyproject: Path, constraints: Path) -> list[str]:
    """One line per dependency that constraints.txt leaves unpinned or pins outside pyproject's range."""
    pinned = pins(constraints)
    lines = []
    for req in requirements(pyproject):
        version = pinned.get(normalize(req.name))
        if version is None:
            lines.append(f"{constraints.name}: {req.name} is not pinned (pyproject.toml asks {req}): add {req.name}==X")
            continue
        try:
            inside = req.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            inside = False
        if not inside:
            lines.append(f"{constraints.name}: {req.name}=={version} is outside pyproject.toml's range {req}")
    return lines


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    pyproject = Path(argv[0]) if argv else root / "pyproject.toml"
    constraints = Path(argv[1]) if len(argv) > 1 else root / "constraints.txt"
    for path in (pyproject, constraints):
        if not path.is_file():
            print(f"check_constraints: {path} not found", file=sys.stderr)
            return 1
    lines = problems(pyproject, constraints)
    for line in lines:
        print(line, file=sys.stderr)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
