"""The README stays a five-minute read and the documentation's links lead somewhere.

README.md: at most 200 lines, and its opening names all five tasks. README.md and docs/**/*.md:
every relative link points to a file or folder that exists, and an anchor on a Markdown page
names one of its headings (GitHub's slugs).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
MAX_README_LINES = 200
TASK_NAMES = ("image classification", "sentiment", "speech recognition", "keyword spotting", "atari")

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def links(text: str) -> list[str]:
    """The targets of the Markdown links of `text`, outside code blocks and code spans."""
    prose = CODE_SPAN.sub("", FENCE.sub("", text))
    return LINK.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
    text = CODE_SPAN.sub(lambda m: m.group(0)[1:-1], heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m) for m in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.M)}


def broken_links(page: Path) -> list[str]:
    """The relative links of `page` whose file is missing or whose anchor names no heading there."""
    broken = []
    for target in links(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
            continue  # absolute: http(s), mailto
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    return broken


def test_the_readme_is_at_most_200_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_the_readme_names_the_five_tasks_in_its_first_10_lines():
    opening = " ".join(README.read_text().splitlines()[:10]).lower()
    missing = [name for name in TASK_NAMES if name not in opening]
    assert not missing, f"README.md's first 10 lines do not name: {', '.join(missing)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files_that_exist(page):
    assert broken_links(page) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "there.md").write_text("# A page\n\n## The `--set` flag\n")
    page = tmp_path / "index.md"
    page.write_text("[ok](there.md#the---set-flag) [self](#local) [gone](missing.md) [bad](there.md#nowhere)\n"
                    "[web](https://example.org/x.md) `[in code](missing2.md)`\n"
                    "```\n[in a block](missing3.md)\n```\n\n## Local\n")
    assert broken_links(page) == ["missing.md (no such file)", "there.md#nowhere (no such heading)"]
