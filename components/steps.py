"""The remote provisioning plan: which steps exist, what each embeds and waits for.

Pure (no Pulumi import): the same settings and files always give the same scripts, so
Pulumi re-runs a step only when something that step uses changed, and the graph can be
tested without an engine. `components/provisioning.py` turns each step into one
`remote.Command` whose `create` is the short fixed command of `create_command` and whose
stdin is the step's script rendered here from `templates/scripts/<step>.sh.j2`.

A step's script holds only what that step uses (the settings it reads, the files it
writes, base64-encoded), which is what scopes a change: a new user count rewrites
odoo.conf and so changes only `odoo-config` (and `health`, which re-checks whatever
changed).
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit


from components import backup
from components.render import ACME_ROOT, ODOO_CONF, exec_start
from components.settings import ROOT, Settings
from components.templating import environment

TEMPLATES = ROOT / "templates" / "scripts"

# Where CopyToRemote puts the Odoo archive: writable by the SSH user, kept across
# reboots (Debian 13 mounts /tmp as tmpfs), checked by SHA-256 before use.
STAGING_DIR = "/var/tmp/odoo-pulumi"
DATA_MOUNT = "/srv/odoo-data"
# Directories on the data volume and where they are bind-mounted: PostgreSQL's data and
# its cluster configuration (a new instance must find both), Odoo's data_dir.
DATA_BIND_DIRS = (
    ("postgresql", "/var/lib/postgresql"),
    ("postgresql-etc", "/etc/postgresql"),
    ("odoo", "/var/lib/odoo"),
)
NGINX_ENABLED = "/etc/nginx/sites-enabled"
HEALTH_TIMEOUT_S = 300

# Odoo's nightly apt repository (odoo-facts.md), one per major version.
ODOO_KEY_URL = "https://nightly.odoo.com/odoo.key"
ODOO_DEB_REPO = "https://nightly.odoo.com/{version}/nightly/deb/"

# wkhtmltopdf 0.12.6.1-3 with patched Qt, the build Odoo's images use, with the
# published checksums (sha1 for the jammy builds, sha256 for the bookworm ones).
WKHTMLTOPDF_BUILDS = {
    "ubuntu/amd64": {"flavour": "jammy", "sum": "967390a759707337b46d1c02452e2bb6b2dc6d59"},
    "ubuntu/arm64": {"flavour": "jammy", "sum": "90f6e69896d51ef77339d3f3a20f8582bdf496cc"},
    "debian/amd64": {"flavour": "bookworm", "sum": "98ba0d157b50d36f23bd0dedf4c0aa28c7b0c50fcdcdc54aa5b6bbba81a3941d"},
    "debian/arm64": {"flavour": "bookworm", "sum": "b6606157b27c13e044d0abbe670301f88de4e1782afca4f9c06a5817f3e03a9c"},
}

BASE_PACKAGES = ("ca-certificates", "curl", "gnupg", "tzdata", "locales", "unattended-upgrades")
SOURCE_PACKAGES = ("python3-venv", "python3-dev", "build-essential")

# Files whose content is secret: a step embedding one is logged nowhere and its script
# is a secret Output. Checked against ServerFile.secret when the scripts are rendered.
SECRET_FILE_KEYS = frozenset({"odoo.conf"})


@dataclass(frozen=True)
class Step:
    """One remote step: its name, the steps it waits for and the server files it writes."""

    name: str
    depends_on: tuple[str, ...]
    embeds: tuple[str, ...] = ()
    summary: str = ""


def plan(s: Settings) -> tuple[Step, ...]:
    """The steps for these settings, each after everything it depends on."""
    volume = ("data-volume",) if s.target == "aws" else ()
    site = ("nginx-site", "nginx-site-acme") if s.domain else ("nginx-site",)
    steps = [
        Step("wait", (), (), "SSH reachable, cloud-init and boot finished"),
        Step("base", ("wait",), (), "base packages, time zone, locale, unattended-upgrades, firewall"),
    ]
    if volume:
        steps.append(Step("data-volume", ("wait",), (), f"EBS volume formatted once, mounted at {DATA_MOUNT}"))
    steps += [
        Step("postgresql", ("base", *volume), ("postgresql-tuning",), "PostgreSQL, its tuning and the odoo role"),
        Step("odoo-install", ("base", *volume), (), "user odoo, Odoo's code and venv, wkhtmltopdf, addons dirs"),
        Step("odoo-config", ("postgresql", "odoo-install"), ("odoo.conf", "odoo.service"),
             "odoo.conf, the unit, the database, (re)start"),
        Step("nginx", ("base",), site, "Nginx site tested before reload, TLS"),
        Step("backup", ("postgresql", "odoo-install"), backup.FILE_KEYS,
             "odoo-backup, odoo-restore, their config, the nightly timer"),
        Step("health", ("odoo-config", "nginx"), (), "/web/health 200 and websocket 101 through Nginx"),
    ]
    return tuple(steps)


def step_embeds_secret(step: Step) -> bool:
    """Whether the step writes a secret file: its output is then logged nowhere."""
    return any(k in SECRET_FILE_KEYS for k in step.embeds)


def step_is_secret(step: Step) -> bool:
    """Whether the step's script (its stdin) must be a secret Output.

    `health` carries a fingerprint of every other script, secret ones included, but
    prints nothing secret: its stdin is secret, its logs are not.
    """
    return step.name == "health" or step_embeds_secret(step)


def create_command(s: Settings) -> str:
    """The fixed command of every step: the script comes on stdin, never in here."""
    return "bash -s" if s.ssh_user == "root" else "sudo -n bash -s"


def delete_command(step: Step, s: Settings) -> str | None:
    """What `pulumi destroy` runs for a step: nothing unless keepDataOnDestroy is false.

    With keepDataOnDestroy false, destroying stops Odoo, drops its database and
    filestore and removes the Nginx site; packages stay installed.
    """
    if s.keep_data_on_destroy:
        return None
    sudo = "" if s.ssh_user == "root" else "sudo -n "
    db = shlex.quote(s.database)
    if step.name == "odoo-config":
        script = (
            "systemctl disable --now odoo 2>/dev/null || true; "
            f"runuser -u postgres -- dropdb --if-exists {db}; "
            f"rm -rf /var/lib/odoo/filestore/{db} /var/lib/odoo/sessions"
        )
    elif step.name == "nginx":
        script = (
            f"rm -f {NGINX_ENABLED}/odoo {NGINX_ENABLED}/odoo-acme "
            "/etc/nginx/sites-available/odoo /etc/nginx/sites-available/odoo-acme; "
            "systemctl reload nginx 2>/dev/null || true"
        )
    else:
        return None
    return f"{sudo}sh -c {shlex.quote(script)} </dev/null"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a local file, read in blocks (an Odoo archive is ~100 MB)."""
    h = hashlib.sha256()
    with open(Path(path).expanduser(), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def archive_suffix(path: str) -> str:
    for suffix in (".tar.gz", ".tar.xz", ".tar.bz2", ".tgz", ".tar", ".zip"):
        if path.endswith(suffix):
            return suffix
    raise ValueError(f"unsupported archive type: {path}")


def archive_staging_path(s: Settings, sha256: str) -> str:
    """Where the archive is uploaded: named by its hash, so a new archive is a new file."""
    return f"{STAGING_DIR}/odoo-src-{sha256[:16]}{archive_suffix(s.odoo_archive or '')}"


def _quote(value: Any) -> str:
    return shlex.quote(str(value))


_env = environment(
    TEMPLATES,
    trim_blocks=True,
    lstrip_blocks=True,
    # Bash's ${#array[@]} would open a Jinja comment with the default "{#".
    comment_start_string="{##",
    comment_end_string="##}",
)
_env.filters["q"] = _quote


def _file(f: Any) -> dict[str, str]:
    """A ServerFile as template data: content base64-encoded, mode as octal text."""
    return {
        "path": f.path,
        "owner": f.owner,
        "group": f.group,
        "mode": f"{f.mode:04o}",
        "b64": base64.b64encode(f.content.encode()).decode(),
    }


def _pip_args(s: Settings) -> list[str]:
    """pip options: a mirror index (trusted by name when it is plain HTTP), and/or a
    wheel directory on the server (alone: an offline install)."""
    args: list[str] = []
    if s.pip_index_url:
        args += ["--index-url", s.pip_index_url]
        url = urlsplit(s.pip_index_url)
        if url.scheme == "http":
            # pip ignores a plain-HTTP index ("not a trusted or secure host") unless told.
            host = url.hostname or ""
            host = f"[{host}]" if ":" in host else host
            args += ["--trusted-host", f"{host}:{url.port}" if url.port else host]
    if s.pip_find_links:
        args += ["--find-links", s.pip_find_links]
        if not s.pip_index_url:
            args.append("--no-index")
    return args


def _source_packages(s: Settings) -> list[str]:
    pkgs = list(SOURCE_PACKAGES)
    if s.odoo_source == "git":
        pkgs.append("git")
    elif s.odoo_source == "archive":
        suffix = archive_suffix(s.odoo_archive or "")
        if suffix == ".tar.xz":
            pkgs.append("xz-utils")
        elif suffix == ".tar.bz2":
            pkgs.append("bzip2")
    return pkgs


def _fingerprint(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p.encode()).digest())
    return h.hexdigest()[:32]


def _contexts(
    s: Settings,
    files: Mapping[str, Any],
    host: str,
    archive_sha256: str | None,
    data_volume_id: str | None,
) -> dict[str, dict[str, Any]]:
    """The template data of each step: only what that step uses."""
    ctx: dict[str, dict[str, Any]] = {
        "wait": {},
        "base": {
            "packages": list(BASE_PACKAGES) + (["ufw"] if s.firewall else []),
            "timezone": s.timezone,
            "locale": s.locale,
            "firewall": s.firewall,
            "firewall_ports": sorted({s.port, 80, 443}),  # s.port: the SSH port
        },
        "data-volume": {
            "volume_id": data_volume_id or "",
            "size_gib": s.data_volume_gib,  # a grown volume re-runs the step, which grows the fs
            "mount_point": DATA_MOUNT,
            "bind_dirs": [list(pair) for pair in DATA_BIND_DIRS],
        },
        "postgresql": {
            "pg_version": s.postgres_version,
            "tuning": _file(files["postgresql-tuning"]),
        },
        "odoo-install": {
            "source": s.odoo_source,
            "odoo_version": s.odoo_version,
            "deb_key_url": ODOO_KEY_URL,
            "deb_repo_url": ODOO_DEB_REPO.format(version=s.odoo_version),
            "source_packages": _source_packages(s) if s.odoo_source != "deb" else [],
            "archive_sha256": archive_sha256 or "",
            "archive_staging": archive_staging_path(s, archive_sha256) if archive_sha256 else "",
            "git_repo": s.odoo_git_repo,
            "git_ref": s.odoo_git_ref,
            "pip_args": _pip_args(s),
            "install_wkhtmltopdf": s.install_wkhtmltopdf,
            "wkhtmltopdf_builds": WKHTMLTOPDF_BUILDS,
            "addons_paths": list(s.addons_paths),
        },
        "odoo-config": {
            "files": [_file(files["odoo.conf"]), _file(files["odoo.service"])],
            "database": s.database,
            "odoo_command": exec_start(s)[:-2],  # without "-c <conf>"
            "conf_path": ODOO_CONF,
        },
        "nginx": {
            "site": _file(files["nginx-site"]),
            "site_link": f"{NGINX_ENABLED}/{Path(files['nginx-site'].path).name}",
            "acme": _file(files["nginx-site-acme"]) if s.domain else None,
            "acme_link": f"{NGINX_ENABLED}/{Path(files['nginx-site-acme'].path).name}" if s.domain else "",
            "domain": s.domain or "",
            "email": s.letsencrypt_email or "",
            "acme_root": ACME_ROOT,
        },
        "backup": backup.step_context(s, files),
        "health": {
            "domain": s.domain or "",
            "host": host,
            "timeout": HEALTH_TIMEOUT_S,
        },
    }
    return ctx


def render_scripts(
    s: Settings,
    files: Mapping[str, Any],
    *,
    host: str,
    archive_sha256: str | None = None,
    data_volume_id: str | None = None,
) -> dict[str, str]:
    """Every step's script for these settings and server files, in plan order.

    `files` is `render.server_files(...)`; `host` is the address health checks by (the
    Host header when there is no domain); `archive_sha256` is the uploaded archive's
    hash (odooSource archive); `data_volume_id` the EBS volume (target aws).
    """
    steps = plan(s)
    for step in steps:
        for key in step.embeds:
            if key not in files:
                raise ValueError(f"step {step.name} needs the server file {key!r}, not rendered")
            if files[key].secret and not step_is_secret(step):
                raise ValueError(f"step {step.name} embeds the secret file {key!r} but is not marked secret")
    if s.odoo_source == "archive" and not archive_sha256:
        raise ValueError("odooSource archive needs the archive's SHA-256")
    if s.target == "aws" and not data_volume_id:
        raise ValueError("target aws needs the data volume id")

    ctx = _contexts(s, files, host, archive_sha256, data_volume_id)
    scripts: dict[str, str] = {}
    for step in steps:
        extra: dict[str, Any] = {}
        if step.name == "odoo-config":
            # The install script's hash: new code (or new pip options) re-runs this step,
            # which restarts Odoo only if the installed code differs from the running one.
            extra["code_ref"] = "odoo-install " + _fingerprint(scripts["odoo-install"])
        if step.name == "health":
            extra["fingerprint"] = "inputs " + _fingerprint(*scripts.values())
        scripts[step.name] = _env.get_template(f"{step.name}.sh.j2").render(
            step=step.name, stack=s.stack, **ctx[step.name], **extra
        )
    return scripts
