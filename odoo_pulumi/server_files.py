"""The one type for a file odoo-pulumi puts on the server, shared by the renderer
(`render`, `backup`), the steps that install files (`steps`) and the dry run (`cli`).

Pure data: where the file goes, what it holds, whose it is, and whether its content is
a secret (then every step embedding it is a secret too).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

# Where CopyToRemote puts what it uploads (the Odoo archive, the shipped programs): writable
# by the SSH user, kept across reboots (Debian 13 mounts /tmp as tmpfs); every upload is
# named by its SHA-256 and checked against it by the step that installs it.
STAGING_DIR = "/var/tmp/odoo-pulumi"


@dataclass(frozen=True)
class ServerFile:
    """`source`: a file of this repository shipped as it is (`content` is its text, byte
    for byte). Such a file is uploaded once by a CopyToRemote of a FileAsset (only its
    path and hash travel through the engine and the state) to `staged`, and the step
    that installs it carries only its SHA-256; a file without `source` travels
    base64-encoded inside its step's script. Never for a secret file: the upload lands
    in STAGING_DIR as the SSH user."""

    path: str
    content: str
    owner: str = "root"
    group: str = "root"
    mode: int = 0o644
    secret: bool = False
    source: Optional[str] = None

    @classmethod
    def shipped(cls, path: str, source: Path) -> "ServerFile":
        """A program of this repository, installed at `path` (root, 0755) as it is, byte
        for byte: what the tests run is what the server runs."""
        return cls(path, source.read_bytes().decode(), "root", "root", 0o755, source=str(source))

    def __post_init__(self) -> None:
        if self.secret and self.source:
            raise ValueError(f"{self.path}: a secret file is never shipped as an upload (source)")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()

    @property
    def staged(self) -> str:
        """Where the upload of a shipped file lands: named by its hash, so a new version
        is a new file (and a new copy), an unchanged one is never copied again."""
        return f"{STAGING_DIR}/{Path(self.path).name}-{self.sha256[:16]}"

    def template_data(self) -> dict[str, str]:
        """The file as a step template takes it, mode as octal text: a shipped file
        (`source`) as its staged upload and SHA-256, any other with its content
        base64-encoded (a script never holds a file in clear)."""
        data = {"path": self.path, "owner": self.owner, "group": self.group, "mode": f"{self.mode:04o}"}
        if self.source:
            return {**data, "staged": self.staged, "sha256": self.sha256}
        return {**data, "b64": base64.b64encode(self.content.encode()).decode()}


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
