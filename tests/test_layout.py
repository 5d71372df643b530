"""The house rules, read from the source (AST, nothing imported or run):

- imports go one way: `__main__` -> components -> odoo_pulumi; no cycle among the
  library's modules, counting imports inside functions too (a late import hides a cycle,
  it does not remove it);
- the library (odoo_pulumi/) imports no Pulumi SDK, no component and not `__main__`;
- components import only Pulumi, the standard library, the library and each other;
- the top-level folders are the ones README.md's "Where things are" lists.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from odoo_pulumi.settings import ROOT

LIBRARY = "odoo_pulumi"
COMPONENTS = "components"
# Listed in the map before the test bed moves there (tests/, scripts/, tools/ today).
MAY_BE_ABSENT = {"testbed"}


def imports(path: Path, package: str) -> list[tuple[str, int]]:
    """Every module `path` imports, absolute, with its line: at module level, inside
    functions and classes alike. `from pkg import name` counts as pkg.name too, so that
    importing a submodule by name is seen."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def graph(folder: str, root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports."""
    mods = {f"{folder}.{p.stem}": p for p in sorted((root / folder).glob("*.py")) if p.stem != "__init__"}
    return {name: {m for m, _ in imports(path, folder) if m in mods and m != name} for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def top(name: str) -> str:
    return name.split(".")[0]


def is_pulumi(name: str) -> bool:
    return top(name) == "pulumi" or top(name).startswith("pulumi_")


def violations(folder: str, allowed, root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted((root / folder).glob("*.py")):
        for name, line in imports(path, folder):
            why = allowed(name)
            if why:
                out.append(f"{path.relative_to(root)}:{line}: imports {name}: {why}")
    return out


def library_rule(name: str) -> str | None:
    if is_pulumi(name):
        return "the library has no Pulumi import (components/ holds the Pulumi side)"
    if top(name) in (COMPONENTS, "__main__"):
        return "imports go __main__ -> components -> odoo_pulumi, never back"
    return None


def component_rule(name: str) -> str | None:
    t = top(name)
    if is_pulumi(name) or t in sys.stdlib_module_names or t in (LIBRARY, COMPONENTS):
        return None
    return "components import only pulumi*, the standard library and odoo_pulumi"


def readme_folders(text: str) -> set[str]:
    """The folders README.md's "Where things are" lists, one `- `name/` ...` line each."""
    m = re.search(r"^## Where things are\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "README.md has no '## Where things are' section"
    return set(re.findall(r"^- `([^`/]+)/`", m.group(1), re.M))


def tracked_folders(root: Path = ROOT) -> set[str]:
    """Top-level folders holding a tracked file (build output and venvs are not part of
    the tree), hidden ones (.ci, .github) aside."""
    files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    return {f.split("/", 1)[0] for f in files.splitlines() if "/" in f and not f.startswith(".")}


# --- the rules -------------------------------------------------------------------------


def test_library_has_no_import_cycle():
    cycle = find_cycle(graph(LIBRARY))
    assert cycle is None, "import cycle in odoo_pulumi: " + " -> ".join(cycle or [])


def test_library_imports_no_pulumi_no_component():
    assert violations(LIBRARY, library_rule) == []


def test_components_import_only_pulumi_stdlib_and_the_library():
    assert violations(COMPONENTS, component_rule) == []


def test_top_level_folders_are_the_readme_map():
    listed = readme_folders((ROOT / "README.md").read_text())
    present = tracked_folders()
    assert sorted(present - listed) == [], "folders missing from README.md's 'Where things are'"
    assert sorted(listed - present - MAY_BE_ABSENT) == [], "README.md's map lists folders that do not exist"


# --- the checks bite (each rule on a small tree with the fault) --------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_a_cycle_through_a_late_import_is_found(tmp_path):
    root = _tree(tmp_path, {
        "odoo_pulumi/__init__.py": "",
        "odoo_pulumi/steps.py": "from odoo_pulumi import backup\n",
        "odoo_pulumi/backup.py": "from odoo_pulumi.render import X\n",
        "odoo_pulumi/render.py": "def main():\n    from . import backup\n",
    })
    assert find_cycle(graph(LIBRARY, root)) == ["odoo_pulumi.backup", "odoo_pulumi.render", "odoo_pulumi.backup"]


def test_forbidden_imports_are_named(tmp_path):
    root = _tree(tmp_path, {
        "odoo_pulumi/a.py": "def f():\n    import pulumi_aws\n",
        "odoo_pulumi/b.py": "from components.server import AwsServer\n",
        "components/c.py": "import pulumi\nimport os\nimport jinja2\nfrom odoo_pulumi import a\n",
    })
    assert [v.split(": ")[0] for v in violations(LIBRARY, library_rule, root)] == [
        "odoo_pulumi/a.py:2", "odoo_pulumi/b.py:1", "odoo_pulumi/b.py:1"]
    assert violations(COMPONENTS, component_rule, root) == [
        "components/c.py:3: imports jinja2: components import only pulumi*, the standard library and odoo_pulumi"]


def test_the_map_is_read_from_its_section():
    text = "# x\n## Where things are\n\n- `a/` one\n- `b/` two\n`c/` not a list line\n## Next\n- `d/` elsewhere\n"
    assert readme_folders(text) == {"a", "b"}

