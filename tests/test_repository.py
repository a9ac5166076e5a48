"""The repository stands on its own: no file cites a document that it does not contain.

Every file of the repository (tracked, or new and not ignored) is read as text and checked for
- the design notes under any name but docs/design.md, or a path into the folder beside the
  checkout (only tests/conftest.py may read test data from there);
- "the seed" used as the name of the source material, which reads like a random seed;
- Markdown links, and docs/*.md paths anywhere, to files that do not exist, and citations
  "docs/design.md section N" of sections that the design notes do not have.

Nothing here imports rnnbptt: these checks need no build.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Callable, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
DESIGN = "docs/design.md"
#: The only file that may reach beside the checkout (for The Time Machine text).
MAY_READ_BESIDE = {"tests/conftest.py"}
#: Folders a walk skips when there is no git checkout to list the files.
SKIPPED_FOLDERS = {".git", "build", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "results"}

# The patterns are written so that this file does not match them itself.
DESIGN_NAME = re.compile(r"(?<![\w.-])(?:[\w.-]*/)*design\.md", re.IGNORECASE)
BESIDE_CHECKOUT = re.compile(r"\.\./shared\b|\bshared/(?i:design)")
SEED_AS_SOURCE = re.compile(r"\bthe seed(?:'s\b|\s)", re.IGNORECASE)
MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
DOCS_PATH = re.compile(r"(?<![\w./-])(docs/[\w/.-]+?\.md)(?![\w/-])")
SECTION_LIST = r"(\d+(?:\.\d+)*(?:(?:,\s*and\s+|,\s*|\s+and\s+)\d+(?:\.\d+)*)*)"
# "docs/design.md section 4", also with the path in backticks or as a Markdown link.
DESIGN_CITATION = re.compile(r"docs/design\.md(?:`|\]\([^)]*\))?,?\s+sections?\s+" + SECTION_LIST)
INNER_CITATION = re.compile(r"\bsections?\s+" + SECTION_LIST)
SECTION_NUMBER = re.compile(r"\d+(?:\.\d+)*")
HEADING_NUMBER = re.compile(r"^#{2,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


def section_numbers(design_text: str) -> frozenset[str]:
    """The numbers of the numbered headings ("## 4. Truncation", "### 4.2 ...")."""
    return frozenset(HEADING_NUMBER.findall(design_text))


def problems(path: str, text: str, exists: Callable[[str], bool], sections: Iterable[str]) -> list[str]:
    """What is wrong with the references in `text`, the content of the repository file `path`
    (relative, with forward slashes). `exists` says whether a repository path exists;
    `sections` are the section numbers of the design notes."""
    known_sections = set(sections)
    found: list[str] = []

    def report(offset: int, message: str) -> None:
        found.append(f"{path}:{text.count(chr(10), 0, offset) + 1}: {message}")

    for match in DESIGN_NAME.finditer(text):
        if match.group(0) != DESIGN:
            report(match.start(), f"design notes cited as {match.group(0)!r}: the repository's are {DESIGN}")
    if path not in MAY_READ_BESIDE:
        for match in BESIDE_CHECKOUT.finditer(text):
            report(match.start(), f"{match.group(0)!r} points outside the repository")
    for match in SEED_AS_SOURCE.finditer(text):
        phrase = match.group(0).strip()
        report(match.start(), f"{phrase!r} names the source material: cite {DESIGN} or the textbook")

    targets: list[tuple[int, str]] = []
    if path.endswith(".md"):
        folder = path.rpartition("/")[0]
        for match in MARKDOWN_LINK.finditer(text):
            target = match.group(1).split("#", 1)[0]
            if not target or "://" in match.group(1) or match.group(1).startswith(("mailto:", "#")):
                continue
            targets.append((match.start(), os.path.normpath(os.path.join(folder, target)).replace(os.sep, "/")))
    targets += [(match.start(), match.group(1)) for match in DOCS_PATH.finditer(text)]
    for offset, target in targets:
        if target.startswith("../") or not exists(target):
            report(offset, f"{target} is not a file of the repository")

    citations = list(DESIGN_CITATION.finditer(text))
    if path == DESIGN:
        citations += INNER_CITATION.finditer(text)
    for match in citations:
        for number in SECTION_NUMBER.findall(match.group(1)):
            if number not in known_sections:
                report(match.start(), f"{DESIGN} has no section {number}")
    return found


def repository_files() -> list[str]:
    """Tracked files and new files that git does not ignore; without git, a walk of the tree."""
    if (ROOT / ".git").exists():
        try:
            listed = subprocess.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT, capture_output=True, check=True,
            ).stdout.decode("utf-8")
            return sorted({name for name in listed.split("\0") if name and (ROOT / name).is_file()})
        except (OSError, subprocess.CalledProcessError):
            pass
    names = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [
            name for name in subfolders
            if name not in SKIPPED_FOLDERS and not name.startswith(".venv") and not name.endswith(".egg-info")
        ]
        names += [Path(folder, f).relative_to(ROOT).as_posix() for f in files]
    return sorted(names)


def read_text(path: str) -> Optional[str]:
    """The file's text, or None for a binary file."""
    data = (ROOT / path).read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def exists_in_repository(path: str) -> bool:
    return (ROOT / path).exists()


def test_no_file_cites_what_the_repository_lacks():
    sections = section_numbers((ROOT / DESIGN).read_text(encoding="utf-8"))
    found = []
    for path in repository_files():
        text = read_text(path)
        if text is not None:
            found += problems(path, text, exists_in_repository, sections)
    assert not found, "\n".join(found)


def test_the_checks_flag_bad_references():
    up, notes = ".." + "/", "DESIGN" + ".md"
    exists = {"README.md", DESIGN, "docs/performance.md", "docs/performance.png"}.__contains__
    # Every sample is read as the content of README.md, at the repository's root.
    sections = {"1", "3", "3.3", "4"}
    bad = {
        f"The maths is in `{up}shared/{notes}`.": 2,  # a foreign name and a path outside
        f"See {notes} section 2.": 1,
        f"text = open('{up}shared/data/timemachine.txt')": 1,
        "The " + "seed's equations, exactly.": 1,
        "written from the " + "seed\nin plain NumPy": 1,
        "[the notes](docs/" + "nowhere.md)": 2,  # a dead link, and a dead docs/ path
        "[the figure](docs/" + "figure.svg)": 1,
        "[up](" + up + "README.md)": 1,
        f"Cited as `{DESIGN}` section 9.": 1,
        f"In terms of [{DESIGN}]({DESIGN}) section 9": 1,
        f"// The truncation ({DESIGN} section 9)": 1,
        f"in {DESIGN} sections 3 and 5": 1,
        f"see {DESIGN}\nsection 3.4": 1,
    }
    for sample, expected in bad.items():
        found = problems("README.md", sample, exists, sections)
        assert len(found) == expected, (sample, found)
    good = [
        f"The maths is in [{DESIGN}]({DESIGN}), section 3.3; see {DESIGN} sections 3 and 4.",
        "The random seed, and a `seed` argument: Randomized(0.9, seed=1).",
        "![speed](docs/performance.png) [the README](README.md) [web](https://d2l.ai/#x) [here](#targets)",
        "BUILD_SHARED_LIBS, shared/data beside the checkout, mydesign.md.",
    ]
    for sample in good:
        assert problems("README.md", sample, exists, sections) == [], sample
    # Links are relative to the file that holds them.
    assert problems("docs/performance.md", "![speed](performance.png) [up](../README.md)", exists, sections) == []
    assert len(problems("docs/performance.md", f"[notes]({DESIGN})", exists, sections)) == 1
    # The path outside the repository is allowed in the one file that reads test data there.
    assert problems("tests/conftest.py", f"{up}shared/data", exists, sections) == []
    # Inside the design notes, a bare "section N" must exist too.
    assert len(problems(DESIGN, "as in section 7", exists, sections)) == 1
    assert problems(DESIGN, "as in section 3.3", exists, sections) == []


def test_design_notes_are_numbered_from_1():
    numbers = section_numbers((ROOT / DESIGN).read_text(encoding="utf-8"))
    top = sorted(int(n) for n in numbers if "." not in n)
    assert top == list(range(1, len(top) + 1)), top
    assert {"3", "4", "6"} <= numbers  # BPTT, truncation and clipping, cited by the code


def readme_command(after: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split(after, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return block.strip()


def test_ci_runs_the_readme_commands_and_makes_the_venv_once():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.count("python3 -m venv") == 1
    ci_install = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    # CI adds its own packages (the PyTorch oracle, the linters) to the README's pip install.
    without_extras = re.sub(r'(pip install "\.\[test\]")[^&]*( &&)', r"\1\2", ci_install)
    assert without_extras == readme_command("Set up and run the tests:")
    lint = readme_command("## Development").splitlines()[-1]
    assert lint in ci.splitlines()


def test_ruff_and_mypy_check_for_the_oldest_supported_python():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    requires = re.search(r'^requires-python = ">=(\d+)\.(\d+)"', pyproject, re.MULTILINE)
    ruff = re.search(r'^target-version = "py(\d)(\d+)"', pyproject, re.MULTILINE)
    mypy = re.search(r'^python_version = "(\d+)\.(\d+)"', pyproject, re.MULTILINE)
    assert requires and ruff and mypy
    assert requires.groups() == ruff.groups() == mypy.groups()


@pytest.mark.parametrize("name", ["LICENSE", DESIGN])
def test_files_the_readme_and_pyproject_rely_on_exist(name):
    assert (ROOT / name).is_file()
