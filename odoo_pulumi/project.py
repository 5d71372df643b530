"""The project's declaration, `Pulumi.yaml`: the one place every setting and its default live.

Sizing, settings, the README's settings table and the stack lint read the defaults from
here instead of restating them. Pure (YAML only, no Pulumi import) and parsed once per
process: every preview pays for it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

PROJECT = "odoo-pulumi"
ROOT = Path(__file__).resolve().parent.parent


def declared_config(path: Path = ROOT / "Pulumi.yaml") -> dict[str, dict[str, Any]]:
    """The `config:` block of Pulumi.yaml: every key with its type, default, description."""
    return _declared_config_of(Path(path))


@functools.lru_cache(maxsize=4)
def _declared_config_of(path: Path) -> dict[str, dict[str, Any]]:
    """Parsed once per file, whichever way the caller names it (`declared_config()` and
    `declared_config(ROOT / "Pulumi.yaml")` were two cache entries, two parses per run).
    libyaml's loader when present (10x faster than the pure Python one)."""
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["config"]


def default(key: str) -> Any:
    """The declared default of a setting (a KeyError names a key without one)."""
    return declared_config()[key]["default"]


def secret_keys() -> tuple[str, ...]:
    """The settings declared `secret: true`, in declaration order."""
    return tuple(k for k, d in declared_config().items() if d.get("secret"))
