"""Write a PEP 503 "simple" index over a directory of wheels.

Used by testbed/scripts/build-wheels: the test host has no internet, so pip there is pointed at
this index (served on the test host's bridge) instead of PyPI. Static files only, so
any HTTP server that serves a directory serves the index.

Usage: python3 simple_index.py DIR
  DIR/files/*.whl are indexed into DIR/simple/index.html and
  DIR/simple/<normalised project name>/index.html (links carry #sha256=...).
"""

from __future__ import annotations

import hashlib
import html
import re
import sys
from pathlib import Path


def normalise(name: str) -> str:
    """PEP 503 project name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(wheel: str) -> str:
    """Project name of a wheel file name (PEP 427: name-version-...whl, `-` escaped as `_`)."""
    if not wheel.endswith(".whl") or wheel.count("-") < 4:
        raise ValueError(f"not a wheel file name: {wheel}")
    return normalise(wheel.split("-", 1)[0])


def _page(title: str, links: list[tuple[str, str]]) -> str:
    body = "\n".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a><br>' for href, text in links)
    return (
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">"
        f"<title>{html.escape(title)}</title></head><body>\n{body}\n</body></html>\n"
    )


def build(root: Path) -> dict[str, list[str]]:
    """(Re)write the index under root/simple from root/files; returns project -> wheels."""
    projects: dict[str, list[str]] = {}
    for wheel in sorted(p.name for p in (root / "files").glob("*.whl")):
        projects.setdefault(project_of(wheel), []).append(wheel)
    if not projects:
        raise ValueError(f"no wheel under {root / 'files'}")
    simple = root / "simple"
    simple.mkdir(exist_ok=True)
    for project, wheels in projects.items():
        links = []
        for wheel in wheels:
            digest = hashlib.sha256((root / "files" / wheel).read_bytes()).hexdigest()
            links.append((f"../../files/{wheel}#sha256={digest}", wheel))
        (simple / project).mkdir(exist_ok=True)
        (simple / project / "index.html").write_text(_page(f"Links for {project}", links))
    (simple / "index.html").write_text(_page("Simple index", [(f"{p}/", p) for p in sorted(projects)]))
    return projects


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: simple_index.py DIR")
    found = build(Path(sys.argv[1]))
    print(f"indexed {sum(map(len, found.values()))} wheels of {len(found)} projects")
