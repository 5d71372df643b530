"""The one way odoo-pulumi loads Jinja2 templates: strict (an undefined name is an
error, never an empty string), no HTML escaping, files kept byte for byte, and the
header every managed file on the server carries."""

from __future__ import annotations

from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def environment(folder: Path = TEMPLATES, **options) -> jinja2.Environment:
    """A strict environment over `folder`; `options` adjust whitespace or delimiters."""
    settings = dict(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    settings.update(options)
    return jinja2.Environment(loader=jinja2.FileSystemLoader(folder), **settings)


def managed_header(stack: str) -> str:
    """The first comment of every file this project writes to a server."""
    return f"Managed by odoo-pulumi (stack {stack}): local changes are overwritten."
