"""README.md's settings table, generated from Pulumi.yaml and the Settings table.

`make docs` rewrites the part of README.md between the two markers; tests/test_docs.py
fails when it differs from what this module generates, so the table is never hand-kept.
Pure: Pulumi.yaml's declarations (type, default, description, its `# --- group` banners)
and the rules' `allowed` words.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from odoo_pulumi import checks
from odoo_pulumi.project import ROOT, declared_config
from odoo_pulumi.settings import TABLE

BEGIN = "<!-- settings-table: generated from Pulumi.yaml by `make docs`; edit Pulumi.yaml, not this table -->"
END = "<!-- settings-table: end -->"


def groups(path: Path = ROOT / "Pulumi.yaml") -> dict[str, str]:
    """Each key's group, from the `# --- name ---` banners of Pulumi.yaml's config block."""
    out, group = {}, ""
    for line in path.read_text().splitlines():
        banner = re.match(r"^\s+# --- ([^-(]+?)\s*[-(]", line)
        key = re.match(r"^  ([A-Za-z][A-Za-z0-9]*):\s*$", line)
        if banner:
            group = banner.group(1)
        elif key:
            out[key.group(1)] = group
    return out


def _default(decl: dict[str, Any]) -> str:
    if decl.get("secret"):
        return "(secret, no default)"
    if "default" not in decl:
        return "(required)"
    value = decl["default"]
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "" or value == []:
        return "(empty)"
    return f"`{value}`"


def _allowed(key: str, decl: dict[str, Any]) -> str:
    if decl.get("secret"):
        if key.endswith("Password"):
            return (f"at least {checks.SECRET_MIN_LENGTH} characters, not a known default, "
                    f"set with `pulumi config set --secret {key}`")
        return f"set with `pulumi config set --secret {key}`"
    if decl["type"] == "boolean":
        return "true, false"
    return TABLE[key].metadata["allowed"] or "any " + {"array": "list of strings"}.get(decl["type"], decl["type"])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table() -> str:
    """The Markdown table: one row per setting, in Pulumi.yaml's order, with its group."""
    by_group = groups()
    rows = ["| group | setting | default | allowed | what it does |", "|---|---|---|---|---|"]
    last = None
    for key, decl in declared_config().items():
        group = by_group.get(key, "")
        rows.append("| " + " | ".join(_cell(c) for c in (
            group if group != last else "", f"`{key}`", _default(decl), _allowed(key, decl),
            decl.get("description", ""))) + " |")
        last = group
    return "\n".join(rows)


def update(readme: str) -> str:
    """README text with the part between the markers replaced by the current table."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        raise ValueError(f"README.md must hold the markers once each, in order:\n{BEGIN}\n{END}")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{settings_table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odoo_pulumi.docs",
                                     description="Regenerate README.md's settings table from Pulumi.yaml.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, metavar="README", help="rewrite the table in place")
    mode.add_argument("--check", type=Path, metavar="README", help="exit 1 when the table is stale")
    args = parser.parse_args(argv)
    path = args.write or args.check
    text = path.read_text()
    new = update(text)
    if args.check:
        if new != text:
            print(f"{path}: the settings table is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if new != text:
        path.write_text(new)
        print(f"{path}: settings table regenerated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
