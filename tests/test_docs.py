"""README.md's settings table is generated from Pulumi.yaml (`make docs`), never hand-kept:
a stale table, a setting missing from it or a default that differs fails here."""

from __future__ import annotations

import subprocess
import sys

import pytest

from odoo_pulumi import docs
from odoo_pulumi.project import ROOT, declared_config

README = ROOT / "README.md"


def test_readme_settings_table_is_current():
    """What `make docs` would write is what README.md holds (else: run `make docs`)."""
    text = README.read_text()
    assert docs.update(text) == text, "README.md's settings table is stale: run `make docs`"


def test_every_setting_has_a_row_with_its_default():
    table = docs.settings_table().splitlines()[2:]
    keys = [row.split(" | ")[1].strip("`") for row in table]
    assert keys == list(declared_config())
    port = next(row for row in table if "| `port` |" in row)
    assert f"`{declared_config()['port']['default']}`" in port and "1..65535" in port


def test_a_changed_declaration_makes_the_table_stale(monkeypatch):
    """A default edited in Pulumi.yaml alone is caught: the check command fails."""
    text = README.read_text()
    changed = {**declared_config(), "port": {**declared_config()["port"], "default": 2222}}
    monkeypatch.setattr(docs, "declared_config", lambda: changed)
    assert docs.update(text) != text and "`2222`" in docs.update(text)


def test_check_command_fails_on_a_stale_copy(tmp_path):
    stale = tmp_path / "README.md"
    stale.write_text(README.read_text().replace("| `port` | `22` |", "| `port` | `2222` |"))
    run = [sys.executable, "-m", "odoo_pulumi.docs", "--check"]
    assert subprocess.run([*run, str(stale)], cwd=ROOT, capture_output=True).returncode == 1
    assert subprocess.run([*run, str(README)], cwd=ROOT, capture_output=True).returncode == 0


def test_markers_are_required():
    with pytest.raises(ValueError, match="markers"):
        docs.update("# a README without the markers\n")


def test_make_help_lists_docs_and_lint_stacks():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"docs", "lint-stacks"} <= names
