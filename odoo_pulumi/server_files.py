"""The one type for a file odoo-pulumi puts on the server, shared by the renderer
(`render`, `backup`), the steps that install files (`steps`) and the dry run (`cli`).

Pure data: where the file goes, what it holds, whose it is, and whether its content is
a secret (then every step embedding it is a secret too).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class ServerFile:
    path: str
    content: str
    owner: str = "root"
    group: str = "root"
    mode: int = 0o644
    secret: bool = False

    def template_data(self) -> dict[str, str]:
        """The file as a step template takes it: content base64-encoded (a script never
        holds a file in clear), mode as octal text."""
        return {
            "path": self.path,
            "owner": self.owner,
            "group": self.group,
            "mode": f"{self.mode:04o}",
            "b64": base64.b64encode(self.content.encode()).decode(),
        }


def write_tree(files: Iterable[ServerFile], out: Path) -> list[Path]:
    """Write files at their absolute paths under `out` (the dry run's layout)."""
    written = []
    for f in files:
        dest = out / f.path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f.content)
        dest.chmod(f.mode)
        written.append(dest)
    return written
