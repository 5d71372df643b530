"""What the nightly backup needs on the server, decided from the settings.

Pure (no Pulumi import), like `render.py`: the same settings and destination give the
same files. Five files land on the server, installed by the `backup` step
(`templates/scripts/backup.sh.j2`):

- `/usr/local/sbin/odoo-backup` (`files/odoo-backup`, shipped verbatim): dumps every
  Odoo database (`pg_dump -Fc`) and tars its filestore, streaming both to the
  destination with a SHA256SUMS and a manifest;
- `/usr/local/sbin/odoo-restore` (`files/odoo-restore`, verbatim; `scripts/restore` is a
  link to it): the operator's restore command, which reads backup.conf with
  odoo-backup's own reader;
- `odoo-backup.service` / `odoo-backup.timer`: the hardened oneshot and its nightly timer;
- `/etc/odoo/backup.conf`: where backups go and how long they stay (root 0600: it holds
  S3 credentials when the stack gives some).

The destination is decided here: on `aws` the stack's own bucket (`components/backups.py`)
under the prefix `<stack>/`, reached with the instance role; on `host` the
`backupDestination` setting, a directory on the server or an `s3://bucket/prefix` URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from odoo_pulumi.render import DATA_DIR
from odoo_pulumi.server_files import ServerFile
from odoo_pulumi.settings import ROOT, SHARED_DIRECTORIES, Settings
from odoo_pulumi.templating import environment, managed_header

# The programs, shipped as they are in the repository (scripts/restore links to the second).
BACKUP_SOURCE = ROOT / "files" / "odoo-backup"
RESTORE_SOURCE = ROOT / "files" / "odoo-restore"

BACKUP_BIN = "/usr/local/sbin/odoo-backup"
RESTORE_BIN = "/usr/local/sbin/odoo-restore"
BACKUP_UNIT = "/etc/systemd/system/odoo-backup.service"
BACKUP_TIMER = "/etc/systemd/system/odoo-backup.timer"
BACKUP_CONF = "/etc/odoo/backup.conf"
# Written by the unit (StateDirectory=): the lock and the last run's result.
STATE_DIR = "/var/lib/odoo-backup"
FILESTORE_ROOT = f"{DATA_DIR}/filestore"

# Nightly at this local time of the server (its `timezone`), each night shifted by up to
# RANDOM_DELAY so that many servers do not hit S3 (or a shared NAS) at the same second.
# Persistent: a night missed while the server was off runs at the next boot.
BACKUP_TIME = "02:30"
RANDOM_DELAY = "30min"

# The server's Python talks to S3 through the distribution's boto3 (Debian main, Ubuntu
# universe): no download outside the archive, security updates from unattended-upgrades.
# Ubuntu 24.04 has no awscli package; AWS CLI v2 would be a binary download.
S3_PACKAGES = ("python3-boto3",)
BASE_PACKAGES = ("python3", "tar", "gzip")

# The file keys this module adds to render.server_files(); the `backup` step embeds them
# (steps.py) and takes the destination they were rendered for alongside.
FILE_KEYS = ("odoo-backup", "odoo-restore", "odoo-backup.service", "odoo-backup.timer", "backup.conf")

_S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>[A-Za-z0-9._/-]*))?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
_SAFE_VALUE = re.compile(r"^[^\s'\"\\$`#]*$")


@dataclass(frozen=True)
class S3Credentials:
    """An access key for an S3 destination outside AWS's instance roles (target host).

    Kept in /etc/odoo/backup.conf (root 0600); the file is then a secret ServerFile.
    """

    access_key_id: str
    secret_access_key: str

    def __post_init__(self) -> None:
        if not _KEY_ID.match(self.access_key_id):
            raise ValueError("S3 access key id: expected 16-128 upper-case letters and digits (AKIA...)")
        if not self.secret_access_key or not _SAFE_VALUE.match(self.secret_access_key):
            raise ValueError("S3 secret access key: empty, or holds blanks, quotes, '$', '`', '#' or '\\'")

    def __repr__(self) -> str:  # never print the secret half
        return f"S3Credentials(access_key_id={self.access_key_id!r}, secret_access_key=<secret>)"


@dataclass(frozen=True)
class Destination:
    """Where the backups go: a directory on the server, or an S3 bucket and key prefix."""

    url: str  # /var/backups/odoo or s3://bucket/prefix/
    bucket: Optional[str] = None
    prefix: str = ""  # "" or ending with "/"
    region: Optional[str] = None

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    @property
    def local_dir(self) -> Optional[str]:
        return None if self.is_s3 else self.url


def backup_prefix(s: Settings) -> str:
    """The key prefix of this stack's backups in its own bucket (target aws)."""
    return f"{s.stack}/"


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of s3://bucket/prefix; the prefix is "" or ends with "/"."""
    m = _S3_URL.match(url)
    if not m or ".." in url:
        raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
    prefix = (m.group("prefix") or "").strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ValueError(f"S3 prefix with an empty or dot segment: {url!r}")
    return m.group("bucket"), f"{prefix}/" if prefix else ""


def destination(s: Settings, bucket: Optional[str] = None, region: Optional[str] = None) -> Destination:
    """The destination these settings ask for.

    target aws: `bucket` (the stack's bucket, from components.backups.Backups) is required and
    backups go under `<stack>/`. target host: `backupDestination`; `bucket` must not be
    given (the stack creates no bucket there).
    """
    if region is not None and not _REGION.match(region):
        raise ValueError(f"AWS region {region!r}: expected a name like eu-west-1")
    if s.target == "aws":
        if not bucket:
            raise ValueError("target aws backs up to the stack's bucket: pass its name")
        parse_s3_url(f"s3://{bucket}")  # a valid bucket name
        prefix = backup_prefix(s)
        return Destination(f"s3://{bucket}/{prefix}", bucket, prefix, region)
    if bucket:
        raise ValueError("target host creates no bucket: set backupDestination to an s3:// URL instead")
    url = s.backup_destination
    if url.startswith("s3://"):
        b, prefix = parse_s3_url(url)
        return Destination(f"s3://{b}/{prefix}", b, prefix, region)
    path = "/" + url.strip("/")
    if path in SHARED_DIRECTORIES \
            or path.startswith(f"{DATA_DIR}/") or "/./" in path + "/" or "/../" in path + "/":
        raise ValueError(f"backupDestination {url!r}: pick a directory of its own, e.g. /var/backups/odoo")
    return Destination(path)


def conf_values(s: Settings, dest: Destination, credentials: Optional[S3Credentials] = None) -> dict[str, str]:
    """The keys of /etc/odoo/backup.conf, read by odoo-backup and odoo-restore."""
    if credentials is not None and not dest.is_s3:
        raise ValueError("S3 credentials given for a local backup directory")
    if credentials is not None and s.target == "aws":
        raise ValueError("target aws uploads with the instance role: no access key")
    values = {
        "STACK": s.stack,
        "DESTINATION": dest.url,
        "RETENTION_DAYS": str(s.backup_retention_days),
        "FILESTORE_ROOT": FILESTORE_ROOT,
        "DB_OWNER": "odoo",
        "FILES_USER": "odoo",
        "PG_USER": "postgres",
        "ODOO_SERVICE": "odoo.service",
        "STATE_DIR": STATE_DIR,
    }
    if dest.region:
        values["S3_REGION"] = dest.region
    if s.target == "aws":
        values["S3_WRITE_ONCE"] = "1"  # the stack's bucket enforces If-None-Match (components/backups.py)
    if credentials is not None:
        values["S3_ACCESS_KEY_ID"] = credentials.access_key_id
        values["S3_SECRET_ACCESS_KEY"] = credentials.secret_access_key
    for key, value in values.items():
        if not _SAFE_VALUE.match(value):
            raise ValueError(f"backup.conf {key}: value with blanks or quotes")
    return values


_env = environment(trim_blocks=True, lstrip_blocks=True)


def _header(s: Settings) -> str:
    return managed_header(s.stack)


def render_conf(s: Settings, dest: Destination, credentials: Optional[S3Credentials] = None) -> str:
    return _env.get_template("backup/backup.conf.j2").render(
        header=_header(s), values=conf_values(s, dest, credentials), dest=dest,
    )


def render_unit(s: Settings, dest: Destination) -> str:
    return _env.get_template("backup/odoo-backup.service.j2").render(
        header=_header(s),
        dest=dest,
        exec_start=[BACKUP_BIN],
        # A local destination is the only place the unit writes, besides its state dir.
        writable_paths=[dest.local_dir] if dest.local_dir else [],
        # S3 needs the network (and the instance metadata service for the role);
        # a local destination needs only PostgreSQL's socket.
        address_families=["AF_UNIX", "AF_INET", "AF_INET6"] if dest.is_s3 else ["AF_UNIX"],
        postgres_unit=f"postgresql@{s.postgres_version}-main.service",
        state_dir=STATE_DIR.rsplit("/", 1)[1],
    )


def render_timer(s: Settings) -> str:
    return _env.get_template("backup/odoo-backup.timer.j2").render(
        header=_header(s), time=BACKUP_TIME, on_calendar=f"*-*-* {BACKUP_TIME}:00", random_delay=RANDOM_DELAY,
    )


def program_files() -> dict[str, ServerFile]:
    """odoo-backup and odoo-restore, shipped as they are: uploaded once from files/ (see
    ServerFile.source), installed by the backup step after checking their SHA-256."""
    return {
        "odoo-backup": ServerFile.shipped(BACKUP_BIN, BACKUP_SOURCE),
        "odoo-restore": ServerFile.shipped(RESTORE_BIN, RESTORE_SOURCE),
    }


def server_files(
    s: Settings,
    *,
    bucket: Optional[str] = None,
    region: Optional[str] = None,
    credentials: Optional[S3Credentials] = None,
) -> dict[str, ServerFile]:
    """The backup's files on the server, keyed like render.server_files (merge the two).

    `bucket`/`region`: the stack's bucket (target aws, from components.backups.Backups).
    `credentials`: an access key for an s3:// backupDestination on target host; without
    one, odoo-backup uses what boto3 finds (an instance role, or the shared credentials
    file /etc/odoo/backup-s3.credentials the operator put there).
    """
    dest = destination(s, bucket, region)
    return {
        **program_files(),
        "odoo-backup.service": ServerFile(BACKUP_UNIT, render_unit(s, dest)),
        "odoo-backup.timer": ServerFile(BACKUP_TIMER, render_timer(s)),
        "backup.conf": ServerFile(BACKUP_CONF, render_conf(s, dest, credentials), "root", "root", 0o600,
                                  secret=credentials is not None),
    }
