"""The repository stands alone: nothing in it points at files outside it, and its docs resolve.

- no file names a path outside the repository (the team's external spec and notes, or a Markdown link
  that climbs out of the repository root); a Markdown link into the repository names a file that exists;
- every repository path named in backticks in the main docs exists (a glob matches at least one file);
- every citation of a section of docs/DEFINITIONS.md names a heading that exists there.

Files checked: what ``git ls-files`` lists, tracked or new but not ignored (a file is checked before it is
committed), binary files skipped. Fast and offline: it only reads files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Built from pieces so that this file does not name them itself.
FORBIDDEN = ("../" + "shared", "shared/" + "notes", "STUDY" + ".md")

DOCS = ("docs/ARCHITECTURE.md", "docs/DEFINITIONS.md", "docs/TROUBLESHOOTING.md", "README.md")
REPO_PREFIXES = (
    "src/",
    "workflow/",
    "tests/",
    "docs/",
    "configs/",
    "profiles/",
    "envs/",
    "benchmarks/",
    ".ci/",
)
DEFINITIONS = "docs/DEFINITIONS.md"

MD_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
# The file name, a comma, then one quoted section name or several joined by "," or "and"; group 1 holds
# the quoted names.
CITATION = re.compile(r"docs/DEFINITIONS\.md,\s*(\"[^\"\n]+\"(?:(?:\s*,\s*|\s+and\s+)\"[^\"\n]+\")*)")
QUOTED = re.compile(r"\"([^\"\n]+)\"")
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@cache
def repo_files() -> tuple[str, ...]:
    """Paths (relative, posix) of the tracked and the new, not ignored files that exist."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the file list comes from `git ls-files`")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    names = sorted({n for n in out.split("\0") if n})
    return tuple(n for n in names if (REPO / n).is_file())


@cache
def text(name: str) -> str | None:
    """The file's text, or None for a binary file (a NUL byte, or not UTF-8)."""
    data = (REPO / name).read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def text_files() -> list[tuple[str, str]]:
    return [(n, t) for n in repo_files() if (t := text(n)) is not None]


def outside_fences(markdown: str) -> list[tuple[int, str]]:
    """(line number, line) of a Markdown text, leaving out fenced code blocks."""
    lines, fenced = [], False
    for i, line in enumerate(markdown.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((i, line))
    return lines


def repo_path_in(span: str) -> str | None:
    """The repository path an inline code span names, or None if it names none (or a template)."""
    span = span.strip()
    if not span.startswith(REPO_PREFIXES):
        return None
    path = span.split()[0].split("::")[0].rstrip(".,;:)")
    if "{" in path or "<" in path:
        return None
    return path


def exists_in_repo(path: str) -> bool:
    if any(c in path for c in "*?["):
        return any(REPO.glob(path.rstrip("/")))
    return (REPO / path).exists()


def definitions_headings() -> list[str]:
    src = REPO / DEFINITIONS
    assert src.is_file(), f"{DEFINITIONS} is missing: docstrings and docs cite its sections"
    return [m.group(1) for _, line in outside_fences(src.read_text()) if (m := HEADING.match(line))]


# ----------------------------------------------------------------------------------------------------


def test_no_file_names_a_path_outside_the_repository():
    bad = []
    for name, body in text_files():
        for i, line in enumerate(body.splitlines(), 1):
            for needle in FORBIDDEN:
                if needle in line:
                    bad.append(f"{name}:{i}: names '{needle}': {line.strip()[:120]}")
    assert not bad, (
        "files cite paths outside the repository, which a clone does not have; cite the project's own "
        "docs instead (docs/DEFINITIONS.md, profiles/slurm/README.md):\n" + "\n".join(bad)
    )


def test_markdown_links_stay_inside_the_repository_and_resolve():
    bad = []
    for name, body in text_files():
        if not name.endswith(".md"):
            continue
        for i, line in outside_fences(body):
            for target in MD_LINK.findall(line):
                if URL_SCHEME.match(target) or target.startswith(("#", "/")):
                    continue
                rel = target.split("#", 1)[0]
                if not rel:
                    continue
                resolved = ((REPO / name).parent / rel).resolve()
                if not resolved.is_relative_to(REPO):
                    bad.append(f"{name}:{i}: link '{target}' leaves the repository")
                elif not resolved.exists():
                    bad.append(f"{name}:{i}: link '{target}' names a missing file")
    assert not bad, "\n".join(bad)


def test_repository_paths_in_the_docs_exist():
    bad, checked = [], 0
    for doc in DOCS:
        src = REPO / doc
        assert src.is_file(), f"{doc} is missing"
        for i, line in outside_fences(src.read_text()):
            for span in INLINE_CODE.findall(line):
                path = repo_path_in(span)
                if path is None:
                    continue
                checked += 1
                if not exists_in_repo(path):
                    bad.append(f"{doc}:{i}: `{path}` does not exist in the repository")
    assert checked > 0, "no repository path found in the docs: has the backtick syntax changed?"
    assert not bad, "\n".join(bad)


def test_definitions_headings_are_unique():
    headings = definitions_headings()
    dupes = sorted({h for h in headings if headings.count(h) > 1})
    assert not dupes, f"{DEFINITIONS} has repeated headings {dupes}: a citation would be ambiguous"


def test_definitions_citations_name_existing_sections():
    headings = set(definitions_headings())
    bad, found = [], 0
    for name, body in text_files():
        for m in CITATION.finditer(body):
            for section in QUOTED.findall(m.group(1)):
                if section.startswith("<") and section.endswith(">"):
                    continue  # the placeholder that explains the citation form
                found += 1
                if section not in headings:
                    line = body.count("\n", 0, m.start()) + 1
                    bad.append(f'{name}:{line}: cites "{section}", which is no heading of {DEFINITIONS}')
    assert found > 0, f"no citation of {DEFINITIONS} found: the docstrings should cite it"
    assert not bad, f"headings there: {sorted(headings)}\n" + "\n".join(bad)


def test_the_checks_catch_what_they_should():
    """The helpers themselves, on planted input (the real files are checked above)."""
    assert repo_path_in("src/shortcut_psd/spectral.py") == "src/shortcut_psd/spectral.py"
    assert repo_path_in("pytest tests/test_x.py") is None
    assert repo_path_in("tests/test_x.py::test_y") == "tests/test_x.py"
    assert repo_path_in("results/{x}/psd.npz") is None
    assert repo_path_in("workflow/rules/{stage}.smk") is None
    assert exists_in_repo("workflow/rules/*.smk")
    assert not exists_in_repo("workflow/rules/*.nothing")
    assert not exists_in_repo("src/shortcut_psd/no_such_module.py")
    planted = "see docs/DEFINITIONS.md" + ', "No Such Section" and [x](../../elsewhere/y.md)'
    assert [QUOTED.findall(c) for c in CITATION.findall(planted)] == [["No Such Section"]]
    two = "docs/DEFINITIONS.md" + ', "Windows" and "Nope"; and "Not Cited"'
    assert [QUOTED.findall(c) for c in CITATION.findall(two)] == [["Windows", "Nope"]]
    assert MD_LINK.findall(planted) == ["../../elsewhere/y.md"]
    assert outside_fences("a\n```\nb\n```\nc") == [(1, "a"), (5, "c")]
