"""Where the product ends: what is deployed never reaches into testbed/.

The program (`__main__.py`, `components/`, `odoo_pulumi/`), the policy pack and what lands
on the server (`templates/`, `files/`) neither import the test bed nor name a path in it:
the test bed runs the product, never the other way round (testbed/README.md).
"""

import ast
from pathlib import Path

from odoo_pulumi.settings import ROOT

PRODUCT = ["__main__.py", "components", "odoo_pulumi", "policy", "templates", "files", "stacks", "Pulumi.yaml"]


def product_files(root: Path = ROOT) -> list[Path]:
    out = []
    for name in PRODUCT:
        p = root / name
        out += [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    return out


def reaches_into_testbed(path: Path) -> list[str]:
    """The lines of `path` that import the test bed or name it; empty when clean."""
    text = path.read_text(errors="replace")
    found = [f"{path.name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if "testbed" in line]
    if path.suffix == ".py":
        for node in ast.walk(ast.parse(text)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}:{node.lineno}: import {n}" for n in names if n.split(".")[0] == "testbed"]
    return found


def test_the_product_never_reaches_into_the_test_bed():
    files = product_files()
    assert len(files) > 20  # the walk found the product
    assert [hit for f in files for hit in reaches_into_testbed(f)] == []


def test_the_local_stack_is_not_a_production_stack():
    """stacks/ holds the stacks CI previews and deploys; the test host's `local` is the test bed's."""
    assert not (ROOT / "stacks" / "Pulumi.local.yaml").exists()
    assert (ROOT / "testbed" / "Pulumi.local.yaml").is_file()


def test_an_import_or_a_path_into_the_test_bed_is_found(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import os\nfrom testbed.tests import x\nPATH = 'testbed/fake-odoo'\n")
    hits = reaches_into_testbed(bad)
    assert any("import testbed.tests" in h for h in hits) and any("fake-odoo" in h for h in hits)
    good = tmp_path / "ok.py"
    good.write_text("import os\n")
    assert reaches_into_testbed(good) == []
