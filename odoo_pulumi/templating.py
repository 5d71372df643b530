"""The one way odoo-pulumi loads Jinja2 templates: strict (an undefined name is an
error, never an empty string), no HTML escaping, files kept byte for byte, and the
header every managed file on the server carries."""

from __future__ import annotations

from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Compiled templates kept between runs (Jinja2's per-user cache directory, 0700, checked
# for its owner; keyed by each template's source, so an edit is never served stale):
# compiling the ~15 templates costs more than rendering them on every preview.
try:
    _BYTECODE_CACHE: jinja2.BytecodeCache | None = jinja2.FileSystemBytecodeCache()
except RuntimeError:  # no private temporary directory to be had: compile every time
    _BYTECODE_CACHE = None


class _SaltedCache(jinja2.FileSystemBytecodeCache):
    """The bytecode cache for an environment that rewrites its sources before compiling
    (an extension's preprocess): the salt names that rewriting, so a template compiled
    without it (or by an older version of it) is never served."""

    def __init__(self, salt: str):
        super().__init__()
        self.salt = salt

    def get_source_checksum(self, source: str) -> str:
        return super().get_source_checksum(f"{self.salt}\n{source}")


def environment(folder: Path = TEMPLATES, *, cache_salt: str = "", **options) -> jinja2.Environment:
    """A strict environment over `folder`; `options` adjust whitespace or delimiters;
    `cache_salt` (required with a preprocessing extension) names the preprocessing."""
    cache = _BYTECODE_CACHE
    if cache is not None and cache_salt:
        cache = _SaltedCache(cache_salt)
    settings = dict(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,
                    bytecode_cache=cache)
    settings.update(options)
    return jinja2.Environment(loader=jinja2.FileSystemLoader(folder), **settings)


def managed_header(stack: str) -> str:
    """The first comment of every file this project writes to a server."""
    return f"Managed by odoo-pulumi (stack {stack}): local changes are overwritten."
