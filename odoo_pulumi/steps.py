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
import ipaddress
import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

import jinja2.ext


from odoo_pulumi import adminhash, backup
from odoo_pulumi.render import (ACME_ROOT, ADMIN_PASSWD_SLOT, DATA_DIR, ODOO_CONF, ODOO_SOCKET, ODOO_UMASK,
                                exec_start, socket_activation, socket_unit, without_demo_arg)
from odoo_pulumi.server_files import STAGING_DIR, ServerFile
from odoo_pulumi.settings import ROOT, Settings, SettingsError
from odoo_pulumi.templating import environment

TEMPLATES = ROOT / "templates" / "scripts"

# STAGING_DIR (server_files): where CopyToRemote puts the Odoo archive and the shipped
# programs, each checked by SHA-256 before use.
DATA_MOUNT = "/srv/odoo-data"
# Directories on the data volume and where they are bind-mounted: PostgreSQL's data and
# its cluster configuration (a new instance must find both), Odoo's data_dir.
DATA_BIND_DIRS = (
    ("postgresql", "/var/lib/postgresql"),
    ("postgresql-etc", "/etc/postgresql"),
    ("odoo", "/var/lib/odoo"),
)
NGINX_ENABLED = "/etc/nginx/sites-enabled"
# x_sendfile: Nginx's worker user reads Odoo's filestore through this group (and only
# the filestore: odoo.conf and the sessions stay odoo's).
NGINX_USER = "www-data"
FILESTORE_GROUP = "odoo-filestore"
HEALTH_TIMEOUT_S = 300
# The acceptance check (odoo_pulumi/acceptance.py, stdlib only) as the health step installs
# it on the server, where operators can run it too (`sudo odoo-acceptance --help`).
ACCEPTANCE_SOURCE = ROOT / "odoo_pulumi" / "acceptance.py"
ACCEPTANCE_PATH = "/usr/local/sbin/odoo-acceptance"
# The administrator passwords' hashing (odoo_pulumi/adminhash.py, stdlib only), run by
# odoo-config with the server's Python: the program never computes a PBKDF2.
ADMINHASH_SOURCE = ROOT / "odoo_pulumi" / "adminhash.py"
# A cron worker polls every 60-70 s: a scheduled action has run within this wait.
CRON_WAIT_S = 150

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

# Requirements that pip compiles where no wheel fits the server's Python (Debian 13's
# 3.13 for Odoo 19's pins: lxml 5.2.1, psycopg2, python-ldap), and the headers each needs:
# (requirement name, Debian packages). Matched on the name alone, so psycopg2-binary or
# lxml-html-clean (wheels, no C) do not count.
REQUIREMENT_BUILD_PACKAGES = (
    ("psycopg2", ("libpq-dev",)),
    ("python-ldap", ("libldap2-dev", "libsasl2-dev")),
    ("lxml", ("libxml2-dev", "libxslt1-dev")),
)

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


def odoo_config_files(s: Settings) -> tuple[str, ...]:
    """The server files the odoo-config step writes (render.server_files keys)."""
    return ("odoo.conf", "odoo.service", *(("odoo.socket",) if socket_activation(s) else ()))


def odoo_units(s: Settings) -> tuple[str, ...]:
    """The units that serve Odoo, in the order they stop: its socket first (a request
    would start Odoo again), then the service."""
    return tuple(u for u in (socket_unit(s), "odoo") if u)


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
        Step("odoo-config", ("postgresql", "odoo-install"), odoo_config_files(s),
             "odoo.conf, the unit and its socket, the database, (re)start"),
        Step("nginx", ("base",), site, "Nginx site tested before reload, TLS"),
        Step("backup", ("postgresql", "odoo-install"), backup.FILE_KEYS,
             "odoo-backup, odoo-restore, their config, the nightly timer"),
        Step("health", ("odoo-config", "nginx"), (),
             "odoo-acceptance: login page, asset bundles, default admin refused, websocket, "
             "workers, cron, journal"),
    ]
    return tuple(steps)


# Steps that carry a secret value other than a file: odoo-config hashes the master password
# and the administrator user's password on the server.
SECRET_VALUE_STEPS = frozenset({"odoo-config"})


def acceptance_file() -> ServerFile:
    """odoo-acceptance as the health step installs it: odoo_pulumi/acceptance.py as it is."""
    return ServerFile.shipped(ACCEPTANCE_PATH, ACCEPTANCE_SOURCE)


# The programs shipped as uploads (ServerFile.source) and the step that installs each:
# their bytes never travel in a script, only their SHA-256 (so a new version of one
# re-runs only the step that installs it).
PROGRAM_STEPS = {"odoo-acceptance": "health", "odoo-backup": "backup", "odoo-restore": "backup"}


def programs(s: Settings) -> dict[str, tuple[ServerFile, str]]:
    """The shipped programs of this plan: key -> (file, the step that installs it).
    Known without the rendered server files (which may wait for the cloud), so the
    uploads can be declared at once."""
    files = {"odoo-acceptance": acceptance_file(), **backup.program_files()}
    present = {st.name for st in plan(s)}
    return {k: (files[k], step) for k, step in PROGRAM_STEPS.items() if step in present}


def step_embeds_secret(step: Step) -> bool:
    """Whether the step carries a secret (a file or a value): its output is logged nowhere."""
    return step.name in SECRET_VALUE_STEPS or any(k in SECRET_FILE_KEYS for k in step.embeds)


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
            # odoo.socket whatever the version: one left by an earlier Odoo 19 goes too
            "systemctl disable --now odoo.socket 2>/dev/null || true; "
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


def file_sha256(path: str | Path, cache_dir: Path | None = None) -> str:
    """SHA-256 of a local file, read in blocks (an Odoo archive is ~100 MB, ~0.3 s).

    Every preview needs it, so the result is kept in a per-user cache keyed by the
    file's path, device, inode, size and modification time (as git's index does): any
    change to the file misses the cache and hashes again.
    """
    p = Path(path).expanduser().resolve()
    st = p.stat()
    key = f"{p}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"
    cache = (cache_dir or _sha_cache_dir()) / "sha256.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(key), str) and re.fullmatch(r"[0-9a-f]{64}", known[key]):
        return known[key]
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    try:  # best effort: a read-only home only costs the hashing again
        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        known = {k: v for k, v in known.items() if not k.startswith(f"{p}|")}
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**known, key: digest}))
        tmp.replace(cache)
    except OSError:
        pass
    return digest


def _sha_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "odoo-pulumi"


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


_HEREDOC = re.compile(r"(?<!<)<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


def strip_shell_comments(source: str) -> str:
    """A step template without its comment lines: they are for readers of templates/,
    and every byte of a script is carried by each preview (the engine logs every input).

    Dropped: lines that hold only a comment (`#` first after indentation), outside
    here-documents (whose lines are content), except the `#!` line, shellcheck
    directives and any comment holding template data (`{{`, `{%`: a fingerprint or a
    value that re-runs the step when it changes must stay in the script).
    """
    out: list[str] = []
    heredoc: str | None = None
    for line in source.splitlines(keepends=True):
        text = line.strip()
        if heredoc is not None:
            if text == heredoc:
                heredoc = None
            out.append(line)
            continue
        if (text.startswith("#") and not text.startswith("#!") and not re.match(r"#\s*shellcheck\s", text)
                and "{{" not in text and "{%" not in text):
            continue
        m = _HEREDOC.search(line)
        if m:
            heredoc = m.group(2)
        out.append(line)
    return "".join(out)


class _ShellComments(jinja2.ext.Extension):
    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return strip_shell_comments(source)


_env = environment(
    TEMPLATES,
    trim_blocks=True,
    lstrip_blocks=True,
    # Bash's ${#array[@]} would open a Jinja comment with the default "{#".
    comment_start_string="{##",
    comment_end_string="##}",
    extensions=[_ShellComments],
    # Change the salt whenever strip_shell_comments changes: compiled templates are cached.
    cache_salt="strip_shell_comments v1",
)
_env.filters["q"] = _quote

# The step framework (errors, progress, file and package helpers, the output guard), shipped
# once: the wait step installs it on the server, every step checks its SHA-256 and sources
# it (templates/scripts/_step.sh.j2), instead of each of the eight scripts carrying it.
STEP_LIB_SOURCE = TEMPLATES / "step-lib.sh"
STEP_LIB_PATH = "/var/lib/odoo-pulumi/step-lib.sh"


def step_lib() -> dict[str, str]:
    """The library as the server gets it (without its comment lines), its path and SHA-256;
    `text` without the final newline (the here-document in wait's script adds it)."""
    content = strip_shell_comments(STEP_LIB_SOURCE.read_text())
    if not content.endswith("\n") or content.endswith("\n\n"):
        raise ValueError(f"{STEP_LIB_SOURCE} must end with exactly one newline")
    if "\nODOO_PULUMI_STEP_LIB\n" in content:
        raise ValueError(f"{STEP_LIB_SOURCE} holds the delimiter of the here-document that installs it")
    return {"path": STEP_LIB_PATH, "sha256": hashlib.sha256(content.encode()).hexdigest(), "text": content[:-1]}
_env.filters["b64"] = lambda text: base64.b64encode(str(text).encode()).decode()


def admin_ranges(s: Settings) -> list[str]:
    """adminCidrs as ufw (and AWS) want them: network addresses, each once, in order."""
    out: list[str] = []
    for c in s.admin_cidrs:
        net = str(ipaddress.ip_network(c, strict=False))
        if net not in out:
            out.append(net)
    return out


def permit_root_login(s: Settings) -> str:
    """sshd's PermitRootLogin: no, unless the deployment itself logs in as root (then
    keys only: turning root login off would lock the deployment out)."""
    return "prohibit-password" if s.ssh_user == "root" else "no"


def ssh_access_summary(s: Settings) -> str:
    """What the base step does to SSH access, in one line for the preview."""
    port = f"{s.port}/tcp"
    if not s.firewall:
        fw = "ufw: left alone (firewall off)"
    elif s.allow_ssh_from_anywhere:
        fw = f"ufw: SSH {port} open to anyone (allowSshFromAnywhere)"
    else:
        fw = (f"ufw: SSH {port} only from {', '.join(admin_ranges(s))}, every other rule opening {port} "
              "removed (refused if this deployment connects from elsewhere)")
    root = ("root with keys only (the deployment logs in as root)" if permit_root_login(s) != "no"
            else "no root login")
    return (f"{fw}; sshd: /etc/ssh/sshd_config.d/00-odoo-pulumi.conf, keys only (no password, no "
            f"keyboard-interactive), {root}, once {s.ssh_user}'s own key login is confirmed, checked by sshd -t")


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


def _declared_size(s: Settings) -> dict[str, int] | None:
    """The existing server's declared size (target host), which the wait step checks
    against the server's own lscpu and /proc/meminfo; None when nothing is declared."""
    if s.target != "host" or not s.host_vcpus:
        return None
    return {"vcpus": s.host_vcpus, "threads_per_core": s.host_threads_per_core,
            "cores": s.host_vcpus // s.host_threads_per_core, "memory_mib": s.host_memory_mib}


SECRET_TEXT_MIN = 12  # shorter pieces of a secret file ("[options]") give nothing away


def secret_texts(step: Step, files: Mapping[str, Any]) -> list[str]:
    """What the step's output guard must never let through: for every secret file the
    step writes, its base64 form, each of its lines and each `key = value` value (at
    least SECRET_TEXT_MIN characters; values that are paths are locations, not secrets,
    and progress lines name them). Empty for a step without a secret file: such a step
    prints as before.
    """
    out: list[str] = []
    for key in step.embeds:
        f = files[key]
        if not f.secret:
            continue
        out.append(f.template_data()["b64"])
        for line in f.content.splitlines():
            value = line.partition("=")[2].strip()
            for piece in (line.strip(), "" if value.startswith("/") else value):
                if len(piece) >= SECRET_TEXT_MIN and piece not in out:
                    out.append(piece)
    # Longest first: a line is replaced whole before the value inside it.
    return sorted(out, key=len, reverse=True)


def _guarded_texts(step: Step, files: Mapping[str, Any], passwords: tuple[str, ...]) -> list[str]:
    """secret_texts, plus the passwords odoo-config carries, as text and base64."""
    out = secret_texts(step, files)
    if step.name in SECRET_VALUE_STEPS:
        extra = [t for pw in passwords for t in (pw, base64.b64encode(pw.encode()).decode())]
        # Longest first, ties in text order: the same bytes on every run (a set's order
        # changes with Python's hash seed, and so would the script).
        out = sorted(set(out) | set(extra), key=lambda text: (-len(text), text))
    return out


def _fingerprint(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p.encode()).digest())
    return h.hexdigest()[:32]


def _backup_context(files: Mapping[str, ServerFile], dest: backup.Destination) -> dict[str, Any]:
    """The `backup` step: the programs, their configuration and units (backup.FILE_KEYS),
    and what the destination they were rendered for needs on the server."""
    return {
        "packages": list(backup.BASE_PACKAGES) + (list(backup.S3_PACKAGES) if dest.is_s3 else []),
        "destination": dest.url,
        "local_dir": dest.local_dir or "",
        "files": [files[k].template_data() for k in backup.FILE_KEYS],
        "units": [files[k].path for k in ("odoo-backup.service", "odoo-backup.timer")],
        "timer": "odoo-backup.timer",
        "backup_bin": backup.BACKUP_BIN,
    }


def _contexts(
    s: Settings,
    files: Mapping[str, Any],
    host: str,
    archive_sha256: str | None,
    data_volume_id: str | None,
    admin_password: str,
    admin_user_password: str,
    backup_destination: backup.Destination,
) -> dict[str, dict[str, Any]]:
    """The template data of each step: only what that step uses."""
    ctx: dict[str, dict[str, Any]] = {
        "wait": {"declared": _declared_size(s)},
        "base": {
            "packages": list(BASE_PACKAGES) + (["ufw", "python3"] if s.firewall else []),
            "timezone": s.timezone,
            "locale": s.locale,
            "firewall": s.firewall,
            "firewall_ports": [80, 443],  # from anywhere; SSH below, from the admin ranges only
            "ssh_port": s.port,
            "ssh_from_anywhere": s.allow_ssh_from_anywhere,
            "admin_cidrs": admin_ranges(s),
            "ssh_user": s.ssh_user,
            "permit_root_login": permit_root_login(s),
        },
        "data-volume": {
            "volume_id": data_volume_id or "",
            "size_gib": s.data_volume_gib,  # a grown volume re-runs the step, which grows the fs
            "mount_point": DATA_MOUNT,
            "bind_dirs": [list(pair) for pair in DATA_BIND_DIRS],
        },
        "postgresql": {
            "pg_version": s.postgres_version,
            "tuning": files["postgresql-tuning"].template_data(),
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
            "build_packages": [[name, list(pkgs)] for name, pkgs in REQUIREMENT_BUILD_PACKAGES],
            "install_wkhtmltopdf": s.install_wkhtmltopdf,
            "wkhtmltopdf_builds": WKHTMLTOPDF_BUILDS,
            "addons_paths": list(s.addons_paths),
            "filestore": f"{DATA_DIR}/filestore",
            "filestore_group": FILESTORE_GROUP,
            "nginx_user": NGINX_USER,
        },
        "odoo-config": {
            "files": [files[key].template_data() for key in odoo_config_files(s)],
            "socket_unit": socket_unit(s),
            "socket_path": ODOO_SOCKET,
            # Stopped to hand the port over and for the database's initialisation: the
            # socket too, or a request would start Odoo in the middle of it.
            "odoo_units": odoo_units(s),
            "database": s.database,
            "odoo_command": exec_start(s)[:-2],  # without "-c <conf>"
            "without_demo": without_demo_arg(s.odoo_version),
            "umask": ODOO_UMASK,
            "conf_path": ODOO_CONF,
            "admin_login": s.admin_login,
            # The passwords travel base64-encoded in this secret script and reach the
            # server's Python on stdin; the hashes are made (or kept) there.
            "admin_password_b64": base64.b64encode(admin_password.encode()).decode(),
            "admin_user_password_b64": base64.b64encode(admin_user_password.encode()).decode(),
            "passwd_slot": ADMIN_PASSWD_SLOT,
            "python": exec_start(s)[0],
            "adminhash_b64": base64.b64encode(ADMINHASH_SOURCE.read_bytes()).decode(),
            "hash_rounds": adminhash.ROUNDS,
        },
        "nginx": {
            "site": files["nginx-site"].template_data(),
            "site_link": f"{NGINX_ENABLED}/{Path(files['nginx-site'].path).name}",
            "acme": files["nginx-site-acme"].template_data() if s.domain else None,
            "acme_link": f"{NGINX_ENABLED}/{Path(files['nginx-site-acme'].path).name}" if s.domain else "",
            "domain": s.domain or "",
            "email": s.letsencrypt_email or "",
            "acme_root": ACME_ROOT,
            "filestore_group": FILESTORE_GROUP,
            "nginx_user": NGINX_USER,
        },
        "backup": _backup_context(files, backup_destination),
        "health": {
            "domain": s.domain or "",
            "host": host,
            "timeout": HEALTH_TIMEOUT_S,
            "acceptance": acceptance_file().template_data(),
            "database": s.database,
            "admin_login": s.admin_login,
            "cron_wait": CRON_WAIT_S,
        },
    }
    return ctx


def render_scripts(
    s: Settings,
    files: Mapping[str, Any],
    *,
    host: str,
    admin_password: str | None,
    admin_user_password: str | None,
    archive_sha256: str | None = None,
    data_volume_id: str | None = None,
    backup_destination: backup.Destination | None = None,
) -> dict[str, str]:
    """Every step's script for these settings and server files, in plan order; with both
    passwords None, only the plain steps' (those that embed no secret): the program
    renders them from plain inputs, so that they stay plain Outputs.

    `files` is `render.server_files(...)`; `host` is the address health checks by (the
    Host header when there is no domain); `archive_sha256` is the uploaded archive's
    hash (odooSource archive); `data_volume_id` the EBS volume (target aws);
    `admin_password` and `admin_user_password` are the adminPassword and
    adminUserPassword secrets: odoo-config (a secret step) hashes them on the server;
    `backup_destination` is what `backup.server_files` rendered for (target aws: the
    stack's bucket, `backup.destination(s, bucket, region)`; target host: the setting's,
    the default).
    """
    if (admin_password is None) != (admin_user_password is None):
        raise ValueError("admin_password and admin_user_password: both (every step) or neither (the plain steps)")
    with_secrets = admin_password is not None
    steps = tuple(st for st in plan(s) if with_secrets or not step_is_secret(st))
    for step in steps:
        for key in step.embeds:
            if key not in files:
                raise ValueError(f"step {step.name} needs the server file {key!r}, not rendered")
            if files[key].secret and not step_is_secret(step):
                raise ValueError(f"step {step.name} embeds the secret file {key!r} but is not marked secret")
            if files[key].source and PROGRAM_STEPS.get(key) != step.name:
                raise ValueError(f"step {step.name}: {key!r} is shipped as an upload that no step installs")
    if s.odoo_source == "archive" and not archive_sha256:
        raise ValueError("odooSource archive needs the archive's SHA-256")
    if s.target == "aws" and not data_volume_id:
        raise ValueError("target aws needs the data volume id")
    if with_secrets:
        for key, value in (("adminPassword", admin_password), ("adminUserPassword", admin_user_password)):
            if not value:
                raise SettingsError(f"setting {key} is empty: set a real secret")
        if ADMIN_PASSWD_SLOT not in files["odoo.conf"].content:
            raise ValueError("odoo.conf must hold render.ADMIN_PASSWD_SLOT: the server fills in the hash")

    if s.target == "aws" and backup_destination is None:
        raise ValueError("target aws needs the backup destination: backup.destination(s, bucket, region)")
    backup_destination = backup_destination or backup.destination(s)
    ctx = _contexts(s, files, host, archive_sha256, data_volume_id, admin_password or "", admin_user_password or "",
                    backup_destination)
    passwords = (admin_password, admin_user_password) if with_secrets else ()
    lib = step_lib()
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
            step=step.name, stack=s.stack, secret_texts=_guarded_texts(step, files, passwords),
            lib=lib, install_lib=step.name == "wait",
            **ctx[step.name], **extra
        )
    return scripts
