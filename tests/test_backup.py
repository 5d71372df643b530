"""The backup's server files and programs, without a server.

Decisions first (destination, configuration, unit, timer), then the rendered files
checked by the programs that read them (systemd-analyze, bash/shellcheck, Python), then
the two programs run for real against a throwaway PostgreSQL cluster: odoo-backup to a
local directory and to a fake S3, odoo-restore back, data compared. The same round trip
on a systemd server is the drill (tests/remote/test_backup_drill.py).
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from odoo_pulumi import backup, render, steps
from odoo_pulumi.settings import ROOT, sizing_for
from tests.conftest import assert_shell_clean, host_settings, stack_settings

BUCKET = "odoo-backups-small-0a1b2c3"
# The passwords odoo-config carries (hashed on the server, never here).
FAKE_PASSWORD = "not a real secret"


def aws_files(stack="small", **over):
    s = stack_settings(stack, **over)
    return s, backup.server_files(s, bucket=BUCKET, region="eu-west-1")


def backup_step(s, files, dest=None) -> str:
    """The `backup` step's script as steps.render_scripts renders it for `pulumi up`,
    `files` (backup.server_files) merged with render's and sent to `dest`."""
    if dest is None and s.target == "aws":
        dest = backup.destination(s, BUCKET, "eu-west-1")
    all_files = {**render.server_files(s, sizing_for(s)), **files}
    return steps.render_scripts(
        s, all_files, host="203.0.113.10", admin_password=FAKE_PASSWORD, admin_user_password=FAKE_PASSWORD,
        archive_sha256="0" * 64 if s.odoo_source == "archive" else None,
        data_volume_id="vol-0123456789abcdef0" if s.target == "aws" else None, backup_destination=dest,
    )["backup"]


def conf_of(files) -> dict[str, str]:
    return dict(line.split("=", 1) for line in files["backup.conf"].content.splitlines()
                if line and not line.startswith("#"))


# --- destination --------------------------------------------------------------------------


@pytest.mark.parametrize("setting, url, bucket, prefix", [
    ("/var/backups/odoo", "/var/backups/odoo", None, ""),
    ("/srv/nas/odoo/", "/srv/nas/odoo", None, ""),
    ("s3://acme-backups", "s3://acme-backups/", "acme-backups", ""),
    ("s3://acme-backups/erp/nightly/", "s3://acme-backups/erp/nightly/", "acme-backups", "erp/nightly/"),
])
def test_host_destination_follows_the_setting(setting, url, bucket, prefix):
    """target host: backupDestination is a directory or an s3:// URL, normalised."""
    d = backup.destination(host_settings(backupDestination=setting))
    assert (d.url, d.bucket, d.prefix, d.is_s3) == (url, bucket, prefix, bucket is not None)
    assert d.local_dir == (None if bucket else url)


@pytest.mark.parametrize("setting", ["/var", "/var/lib/odoo", "/var/lib/odoo/backups", "/etc",
                                     "/var/backups/../../etc", "/tmp"])
def test_host_destination_refuses_shared_directories(setting):
    """A destination pruned by the backup must be a directory of its own (never /, /etc,
    Odoo's own data directory, or a path with '..')."""
    with pytest.raises(ValueError, match="directory of its own"):
        backup.destination(host_settings(backupDestination=setting))


def test_aws_destination_is_the_stacks_bucket_under_its_prefix():
    """target aws: s3://<the stack's bucket>/<stack>/, region passed on; no bucket is an error."""
    s = stack_settings("small")
    d = backup.destination(s, bucket=BUCKET, region="eu-west-1")
    assert (d.url, d.bucket, d.prefix, d.region) == (f"s3://{BUCKET}/small/", BUCKET, "small/", "eu-west-1")
    assert backup.backup_prefix(s) == "small/"
    with pytest.raises(ValueError, match="bucket"):
        backup.destination(s)
    with pytest.raises(ValueError, match="creates no bucket"):
        backup.destination(host_settings(), bucket=BUCKET)
    with pytest.raises(ValueError, match="region"):
        backup.destination(s, bucket=BUCKET, region="Europe")
    with pytest.raises(ValueError, match="s3://"):
        backup.destination(s, bucket="Not_A_Bucket")


def test_packages_add_boto3_only_for_s3():
    """boto3 (the distribution's python3-boto3) is installed only when it is used."""
    s = host_settings()
    assert "python3-boto3" not in backup_step(s, backup.server_files(s))
    assert "python3-boto3" in backup_step(*aws_files())


# --- configuration file ----------------------------------------------------------------------


def test_conf_is_root_only_and_holds_the_decisions():
    """backup.conf: root:root 0600, the destination, the retention and the paths both
    programs read; not secret without credentials."""
    s, files = aws_files("large")
    f = files["backup.conf"]
    assert (f.path, f.owner, f.group, f.mode, f.secret) == ("/etc/odoo/backup.conf", "root", "root", 0o600, False)
    conf = conf_of(files)
    assert conf["DESTINATION"] == f"s3://{BUCKET}/large/"
    assert conf["RETENTION_DAYS"] == "90" == str(s.backup_retention_days)
    assert conf["S3_REGION"] == "eu-west-1"
    assert conf["FILESTORE_ROOT"] == "/var/lib/odoo/filestore"
    assert (conf["DB_OWNER"], conf["FILES_USER"], conf["PG_USER"]) == ("odoo", "odoo", "postgres")
    assert not any(k.startswith("S3_ACCESS") or k.startswith("S3_SECRET") for k in conf)
    assert f.content.startswith("# Managed by odoo-pulumi (stack large)")


def test_credentials_make_the_conf_secret():
    """An access key for a host's S3 destination lives only in the 0600 file, which is
    then a secret ServerFile (the step embedding it must be secret too)."""
    s = host_settings(backupDestination="s3://acme-backups/erp")
    creds = backup.S3Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    files = backup.server_files(s, credentials=creds)
    assert files["backup.conf"].secret is True and files["backup.conf"].mode == 0o600
    conf = conf_of(files)
    assert conf["S3_ACCESS_KEY_ID"] == "AKIAIOSFODNN7EXAMPLE"
    assert conf["S3_SECRET_ACCESS_KEY"] == "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert "wJalr" not in repr(creds)
    for f in (files["odoo-backup.service"], files["odoo-backup.timer"], files["odoo-backup"]):
        assert "wJalr" not in f.content
    with pytest.raises(ValueError, match="local backup directory"):
        backup.server_files(host_settings(), credentials=creds)
    with pytest.raises(ValueError, match="instance role"):
        backup.server_files(stack_settings("small"), bucket=BUCKET, credentials=creds)
    with pytest.raises(ValueError, match="secret access key"):
        backup.S3Credentials("AKIAIOSFODNN7EXAMPLE", "has space")


def test_retention_follows_the_setting():
    """backupRetentionDays reaches the file the program prunes by."""
    for days in (1, 7, 365):
        assert conf_of(backup.server_files(host_settings(backupRetentionDays=days)))["RETENTION_DAYS"] == str(days)


# --- unit and timer ---------------------------------------------------------------------------


def unit_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_local_unit_writes_only_its_directory_and_has_no_network():
    """A local destination: the only writable path is the backup directory, AF_UNIX only."""
    s = host_settings(backupDestination="/srv/backups/odoo")
    unit = unit_lines(backup.server_files(s)["odoo-backup.service"].content)
    assert "ReadWritePaths=/srv/backups/odoo" in unit
    assert "RestrictAddressFamilies=AF_UNIX" in unit
    assert "RequiresMountsFor=/srv/backups/odoo /var/lib/odoo" in unit


def test_s3_unit_has_network_and_no_writable_path():
    """To S3 the unit writes nothing but its state directory, and needs IPv4/IPv6."""
    _, files = aws_files()
    unit = unit_lines(files["odoo-backup.service"].content)
    assert not [line for line in unit if line.startswith("ReadWritePaths")]
    assert "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" in unit


@pytest.mark.parametrize("variant", ["host", "aws"])
def test_unit_is_a_hardened_oneshot_logging_to_journald(variant):
    """Type=oneshot (failure = a failed unit, visible in systemctl status), the hardening
    of odoo.service plus a bounding set limited to switching users."""
    files = aws_files()[1] if variant == "aws" else backup.server_files(host_settings())
    unit = unit_lines(files["odoo-backup.service"].content)
    for line in ("Type=oneshot", "ExecStart=/usr/local/sbin/odoo-backup", "StandardOutput=journal",
                 "StandardError=journal", "SyslogIdentifier=odoo-backup", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
                 "CapabilityBoundingSet=CAP_SETUID CAP_SETGID", "UMask=0077", "StateDirectory=odoo-backup",
                 "SystemCallFilter=@system-service", "RestrictSUIDSGID=yes"):
        assert line in unit, line
    assert not [line for line in unit if line.startswith("Restart=")], "a oneshot backup is not restarted"
    # Seen on the test host: User=root with NoNewPrivileges leaves CapEff without
    # CAP_SETUID, and every switch to postgres fails with EPERM.
    assert not [line for line in unit if line.startswith("User=")]
    assert not [line for line in unit if line.startswith("[Install]")], "started by its timer only"


def test_timer_is_nightly_persistent_and_randomized():
    """Nightly at BACKUP_TIME, Persistent (a missed night runs at boot), randomized."""
    timer = unit_lines(backup.server_files(host_settings())["odoo-backup.timer"].content)
    assert f"OnCalendar=*-*-* {backup.BACKUP_TIME}:00" in timer
    assert "Persistent=true" in timer
    assert "RandomizedDelaySec=30min" in timer
    assert "WantedBy=timers.target" in timer


def _systemd_verify(tmp_path: Path, files) -> subprocess.CompletedProcess:
    """systemd-analyze verify on the unit and timer side by side (the timer names its
    service); ExecStart pointed at a stand-in, as in test_render_checks.py."""
    stand_in = tmp_path / "odoo-backup"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    unit = files["odoo-backup.service"].content.replace(
        f"ExecStart={backup.BACKUP_BIN}", f"ExecStart={stand_in}")
    (tmp_path / "odoo-backup.service").write_text(unit)
    (tmp_path / "odoo-backup.timer").write_text(files["odoo-backup.timer"].content)
    return subprocess.run(["systemd-analyze", "verify", str(tmp_path / "odoo-backup.service"),
                           str(tmp_path / "odoo-backup.timer")], capture_output=True, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["host", "aws"])
def test_systemd_accepts_the_unit_and_timer(variant, tmp_path):
    """No warning at all from systemd-analyze verify (unknown keys are only warnings)."""
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is not installed: .ci/run installs systemd")
    files = aws_files()[1] if variant == "aws" else backup.server_files(host_settings())
    r = _systemd_verify(tmp_path, files)
    noise = [l for l in r.stderr.splitlines() if "odoo-backup" in l or "Unknown" in l or "Failed" in l]
    assert r.returncode == 0 and not noise, r.stderr


@pytest.mark.slow
def test_systemd_verify_catches_a_bad_timer(tmp_path):
    """The check above can fail: a malformed calendar spec is reported."""
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is not installed")
    files = dict(backup.server_files(host_settings()))
    f = files["odoo-backup.timer"]
    files["odoo-backup.timer"] = type(f)(f.path, f.content.replace("*-*-* 02:30:00", "every night"))
    r = _systemd_verify(tmp_path, files)
    assert "OnCalendar" in r.stderr or "calendar" in r.stderr.lower(), r.stderr


# --- the programs ---------------------------------------------------------------------------------


def test_restore_on_the_server_is_scripts_restore():
    """odoo-restore is scripts/restore byte for byte, executable, root-owned."""
    f = backup.server_files(host_settings())["odoo-restore"]
    assert f.content == (ROOT / "scripts" / "restore").read_text()
    assert (f.path, f.owner, f.mode) == ("/usr/local/sbin/odoo-restore", "root", 0o755)
    assert os.access(ROOT / "scripts" / "restore", os.X_OK)


def test_backup_program_is_files_odoo_backup():
    """The Python program is not templated: the server gets files/odoo-backup byte for
    byte (what the tests run is what the server runs), marked as managed, and it compiles."""
    f = backup.server_files(host_settings())["odoo-backup"]
    script = f.content
    assert script == (ROOT / "files" / "odoo-backup").read_text()
    assert (f.path, f.owner, f.mode) == ("/usr/local/sbin/odoo-backup", "root", 0o755)
    assert script.startswith("#!/usr/bin/python3 -I\n# Managed by odoo-pulumi")
    assert "{%" not in script and "{{" not in script
    compile(script, "odoo-backup", "exec")


def test_restore_is_a_python_program_on_odoo_backups_reader():
    """odoo-restore is Python like odoo-backup (the system's, isolated), compiles, and
    reads backup.conf with odoo-backup's reader only: it holds no parser of its own."""
    script = (ROOT / "files" / "odoo-restore").read_text()
    assert script.startswith("#!/usr/bin/python3 -I\n# Managed by odoo-pulumi")
    compile(script, "odoo-restore", "exec")
    assert "backup.parse_config(" in script and ".partition(\"=\")" not in script and "split(\"=\"" not in script


def test_restore_reads_backup_conf_like_odoo_backup(tmp_path):
    """A backup.conf odoo-backup refuses, odoo-restore refuses the same way (exit 2, the
    file and line named), before touching anything."""
    if os.geteuid() != 0:
        pytest.skip("odoo-restore runs as root only")
    (tmp_path / "x.dump").write_bytes(b"x")
    (tmp_path / "filestore.tar.gz").write_bytes(b"x")
    conf = tmp_path / "backup.conf"
    conf.write_text("# comment\nFILESTORE_ROOT=/srv/x\nnot a setting\n")
    r = subprocess.run([str(ROOT / "scripts" / "restore"), "--config", str(conf), "--no-verify", "--database", "x",
                        "--dump", str(tmp_path / "x.dump"), "--filestore", str(tmp_path / "filestore.tar.gz")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"{conf}:3: expected KEY=VALUE" in r.stderr, r.stdout + r.stderr
    assert not list((ROOT / "files").glob("__pycache__")), "loading odoo-backup left a bytecode cache"


def test_step_passes_bash_and_shellcheck(tmp_path):
    """Every variant of the rendered step parses; shellcheck (when installed) finds no
    warning."""
    variants = {
        "local": host_settings(),
        "host-s3": host_settings(backupDestination="s3://acme-backups/erp"),
        "aws": stack_settings("small"),
    }
    paths = []
    for name, s in variants.items():
        files = backup.server_files(s, bucket=BUCKET if s.target == "aws" else None)
        path = tmp_path / f"backup-{name}.sh"
        path.write_text(backup_step(s, files))
        paths.append(path)
    for path in paths:
        assert_shell_clean(path)


def test_step_installs_what_the_destination_needs():
    """The step: boto3 only for S3, the 0700 root directory only for a local destination,
    every file with its owner and mode, the configuration checked before the timer, the
    step's closing line."""
    s = host_settings()
    local = backup_step(s, backup.server_files(s))
    assert "apt_install python3 tar gzip\n" in local
    assert "ensure_dir \"$backup_dir\" root root 0700" in local and "backup_dir=/var/backups/odoo" in local
    assert local.index("--check") < local.index("ensure_enabled odoo-backup.timer")
    for f in backup.server_files(s).values():
        if f.source:  # the programs: installed from their upload, checked by SHA-256
            assert f"put_staged {f.path} {f.owner} {f.group} {f.mode:04o} {f.staged} {f.sha256}\n" in local
        else:
            assert f"put_file {f.path} {f.owner} {f.group} {f.mode:04o}" in local
    assert local.rstrip().endswith("step_main </dev/null\nfinish")
    s3 = backup_step(*aws_files())
    assert "apt_install python3 tar gzip python3-boto3" in s3 and "backup_dir=" not in s3


def test_step_needs_the_backup_files():
    """Rendering the step without merging backup.server_files() is an error, not a
    script that silently installs nothing."""
    s = host_settings()
    with pytest.raises(ValueError, match="odoo-backup"):
        steps.render_scripts(s, render.server_files(s, sizing_for(s)), host="203.0.113.10",
                             admin_password=FAKE_PASSWORD, admin_user_password=FAKE_PASSWORD)


def test_step_takes_the_destination_it_is_given():
    """The step installs for the destination handed to it with the files (the stack's
    bucket on aws: there is no default), not one read back from backup.conf."""
    s, files = aws_files()
    with pytest.raises(ValueError, match="target aws needs the backup destination"):
        steps.render_scripts(
            s, {**render.server_files(s, sizing_for(s)), **files}, host="h", admin_password=FAKE_PASSWORD, admin_user_password=FAKE_PASSWORD,
            data_volume_id="vol-0123456789abcdef0")
    script = backup_step(s, files, dest=backup.destination(s, "another-bucket", "eu-west-1"))
    assert "# Nightly backups to s3://another-bucket/small/:" in script


def test_file_contents_travel_encoded():
    """Like every step, file contents are base64 in the script, never in clear (the
    S3 secret included)."""
    s = host_settings(backupDestination="s3://acme-backups/erp")
    creds = backup.S3Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    files = backup.server_files(s, credentials=creds)
    # The step template with the step's own data (steps.render_scripts itself refuses a
    # secret backup.conf: the backup step is not a secret step, see below).
    script = steps._env.get_template("backup.sh.j2").render(
        step="backup", stack=s.stack, secret_texts=[], lib=steps.step_lib(),
        **steps._backup_context(files, backup.destination(s)))
    assert "wJalrXUtnFEMI" not in script and "AKIAIOSFODNN7EXAMPLE" not in script
    with pytest.raises(ValueError, match="backup.conf.*not marked secret"):
        backup_step(s, files)


# --- odoo-backup's retention, imported as a module -----------------------------------------------


@pytest.fixture(scope="module")
def odoo_backup(tmp_path_factory):
    """The rendered odoo-backup, imported (it is a Python program without .py)."""
    path = tmp_path_factory.mktemp("prog") / "odoo-backup"
    path.write_text(backup.server_files(host_settings())["odoo-backup"].content)
    loader = importlib.machinery.SourceFileLoader("odoo_backup_under_test", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _fake_backup(root: Path, db: str, when: dt.datetime, complete=True, partial=False) -> Path:
    name = when.strftime("%Y%m%dT%H%M%SZ") + (".partial" if partial else "")
    d = root / db / name
    d.mkdir(parents=True)
    (d / f"{db}.dump").write_bytes(b"x")
    if complete and not partial:
        (d / "manifest.json").write_text("{}")
    return d


def test_prune_removes_old_backups_and_keeps_the_newest(odoo_backup, tmp_path):
    """Older than the retention goes, except the newest complete backup of a database
    (a server whose backups stopped keeps its last one); stale .partial directories go;
    names the program did not write stay."""
    now = dt.datetime(2025, 6, 30, 3, 0, tzinfo=dt.timezone.utc)
    day = dt.timedelta(days=1)
    keep = [
        _fake_backup(tmp_path, "odoo", now - 10 * day),
        _fake_backup(tmp_path, "odoo", now),
        _fake_backup(tmp_path, "old_db", now - 100 * day),  # newest complete of old_db
        _fake_backup(tmp_path, "odoo", now - dt.timedelta(hours=2), partial=True),  # a run in progress
    ]
    gone = [
        _fake_backup(tmp_path, "odoo", now - 40 * day),
        _fake_backup(tmp_path, "odoo", now - 31 * day),
        _fake_backup(tmp_path, "old_db", now - 200 * day),
        _fake_backup(tmp_path, "old_db", now - 90 * day, complete=False),  # incomplete, newer than the kept one
        _fake_backup(tmp_path, "odoo", now - 2 * day, partial=True),  # a dead run
    ]
    (tmp_path / "README").write_text("operator's note")
    (tmp_path / "odoo" / "by-hand").mkdir()
    removed = odoo_backup.prune(str(tmp_path), 30, now=now)
    assert sorted(removed) == sorted(str(p) for p in gone)
    assert all(p.exists() for p in keep)
    assert (tmp_path / "README").exists() and (tmp_path / "odoo" / "by-hand").exists()
    assert odoo_backup.prune(str(tmp_path), 30, now=now) == [], "a second pass removes nothing"


def test_config_errors_name_the_problem(odoo_backup, tmp_path):
    """A bad backup.conf stops the program with the key and the file named."""
    conf = tmp_path / "backup.conf"
    conf.write_text("DESTINATION=relative/dir\nRETENTION_DAYS=30\nFILESTORE_ROOT=/x\nDB_OWNER=odoo\n"
                    "FILES_USER=odoo\nPG_USER=postgres\nSTATE_DIR=/x\n")
    with pytest.raises(odoo_backup.ConfigError, match="DESTINATION"):
        odoo_backup.read_config(str(conf))
    conf.write_text("DESTINATION=/b\nRETENTION_DAYS=0\nFILESTORE_ROOT=/x\nDB_OWNER=odoo\n"
                    "FILES_USER=odoo\nPG_USER=postgres\nSTATE_DIR=/x\n")
    with pytest.raises(odoo_backup.ConfigError, match="RETENTION_DAYS"):
        odoo_backup.read_config(str(conf))
    conf.write_text("DESTINATION=/b\n")
    with pytest.raises(odoo_backup.ConfigError, match="lacks RETENTION_DAYS"):
        odoo_backup.read_config(str(conf))
    rendered = conf_of(backup.server_files(host_settings()))
    conf.write_text("".join(f"{k}={v}\n" for k, v in rendered.items()))
    assert odoo_backup.read_config(str(conf))["DESTINATION"] == "/var/backups/odoo"


# --- the round trip against a throwaway PostgreSQL ------------------------------------------------

PG_PORT = 55439


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries missing: .ci/run installs postgresql")
    return Path(found[-1]).parent


class Pg:
    """A throwaway cluster run by the postgres user, reached through its own socket."""

    def __init__(self, base: Path):
        self.base, self.bin = base, _pg_bin()
        self.sock = base / "sock"
        self.env = {**os.environ, "PGHOST": str(self.sock), "PGPORT": str(PG_PORT),
                    "PATH": f"{self.bin}:{os.environ['PATH']}"}

    def run(self, *argv, input=None) -> str:
        r = subprocess.run(["runuser", "-u", "postgres", "--", *argv], input=input, capture_output=True,
                           text=True, env=self.env)
        assert r.returncode == 0, f"{argv}: {r.stderr}"
        return r.stdout.strip()

    def sql(self, sql: str, db: str = "postgres", role: str = "postgres") -> str:
        return self.run(str(self.bin / "psql"), "-XAt", "-v", "ON_ERROR_STOP=1", "-U", role, "-d", db, input=sql)


@pytest.fixture(scope="module")
def pg():
    """PostgreSQL with the role odoo, as on a provisioned server (needs root, as CI has)."""
    if os.geteuid() != 0:
        pytest.skip("the round trip switches to the postgres user: run as root (CI does)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("no postgres user: .ci/run installs postgresql")
    base = Path(tempfile.mkdtemp(prefix="odoo-pulumi-backup-"))
    base.chmod(0o755)
    pg = Pg(base)
    pg.sock.mkdir()
    shutil.chown(pg.sock, "postgres")
    data = base / "data"
    data.mkdir()
    shutil.chown(data, "postgres")
    pg.run(str(pg.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--locale=C.UTF-8",
           "-E", "UTF8")
    with open(data / "postgresql.conf", "a") as f:
        f.write(f"\nport = {PG_PORT}\nunix_socket_directories = '{pg.sock}'\nlisten_addresses = ''\n")
    (base / "log").touch()
    shutil.chown(base / "log", "postgres")
    pg.run(str(pg.bin / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60", "start")
    try:
        pg.sql("CREATE ROLE odoo LOGIN CREATEDB NOSUPERUSER NOCREATEROLE;")
        yield pg
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", str(pg.bin / "pg_ctl"), "-D", str(data), "-m",
                        "immediate", "-w", "stop"], capture_output=True, env=pg.env)
        shutil.rmtree(base, ignore_errors=True)


def _make_odoo_database(pg: Pg, db: str, filestore: Path) -> None:
    """A database owned by odoo the way Odoo makes one (template0, C collation,
    pg_trgm created by the owner), with a few MB of rows, and a filestore."""
    pg.sql(f'CREATE DATABASE "{db}" OWNER odoo TEMPLATE template0 ENCODING \'UTF8\' LC_COLLATE \'C\';')
    pg.sql(textwrap.dedent("""
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar NOT NULL, email varchar);
        CREATE INDEX res_partner_name_trgm ON res_partner USING gin (name gin_trgm_ops);
        INSERT INTO res_partner (name, email) SELECT 'Partner ' || i, 'p' || i || '@example.com'
            FROM generate_series(1, 5000) i;
        CREATE TABLE ir_attachment (id serial PRIMARY KEY, res_id int REFERENCES res_partner(id),
                                    store_fname varchar, db_datas bytea);
        INSERT INTO ir_attachment (res_id, store_fname, db_datas)
            SELECT i, 'ab/' || md5(i::text), decode(repeat(md5(i::text), 64), 'hex')
            FROM generate_series(1, 3000) i;
        CREATE VIEW partner_count AS SELECT count(*) FROM res_partner;
    """), db=db, role="odoo")
    for i in range(12):
        d = filestore / f"{i:02x}"
        d.mkdir(parents=True, exist_ok=True)
        (d / hashlib.sha1(str(i).encode()).hexdigest()).write_bytes(os.urandom(1000 * (i + 1)))
    (filestore / "ff" / "big").parent.mkdir(exist_ok=True)
    (filestore / "ff" / "big").write_bytes(os.urandom(3 << 20))
    subprocess.run(["chown", "-R", "postgres:postgres", str(filestore.parent)], check=True)


def _counts(pg: Pg, db: str) -> dict[str, int]:
    tables = pg.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;", db=db).split()
    return {t: int(pg.sql(f'SELECT count(*) FROM "{t}";', db=db)) for t in tables}


def _tree_sums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def site(pg):
    """A server layout in a scratch directory: filestore root, backup dir, state dir,
    backup.conf rendered from the settings with the paths moved there."""
    base = Path(tempfile.mkdtemp(prefix="odoo-pulumi-site-", dir=pg.base))
    base.chmod(0o755)
    layout = {"FILESTORE_ROOT": base / "filestore", "DESTINATION": base / "backups", "STATE_DIR": base / "state"}
    layout["FILESTORE_ROOT"].mkdir()
    layout["DESTINATION"].mkdir(mode=0o700)
    shutil.chown(layout["FILESTORE_ROOT"], "postgres")
    conf = conf_of(backup.server_files(host_settings()))
    conf.update({k: str(v) for k, v in layout.items()})
    # The throwaway cluster has no OS user odoo: the filestore belongs to postgres here.
    conf.update({"FILES_USER": "postgres", "ODOO_SERVICE": "odoo-pulumi-test-absent.service"})
    conf_path = base / "backup.conf"
    conf_path.write_text("".join(f"{k}={v}\n" for k, v in conf.items()))
    programs = base / "bin"
    programs.mkdir()
    (programs / "odoo-backup").write_text(backup.server_files(host_settings())["odoo-backup"].content)
    shutil.copy(ROOT / "scripts" / "restore", programs / "odoo-restore")
    for p in programs.iterdir():
        p.chmod(0o755)
    yield {"base": base, "conf": conf_path, "bin": programs, **layout}
    shutil.rmtree(base, ignore_errors=True)
    for db in pg.sql("SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres';").split():
        pg.sql(f'DROP DATABASE "{db}" WITH (FORCE);')


def _run(pg: Pg, site, program: str, *args, extra_env=None, python=False) -> subprocess.CompletedProcess:
    argv = [str(site["bin"] / program), "--config", str(site["conf"]), *args]
    if python:  # run through python3 without -I so PYTHONPATH (a fake boto3) applies
        argv = ["/usr/bin/python3", *argv]
    return subprocess.run(argv, capture_output=True, text=True, env={**pg.env, **(extra_env or {})}, timeout=300)


@pytest.mark.slow
def test_backup_and_restore_round_trip(pg, site):
    """odoo-backup writes <db>/<UTC time>/ with the dump, the filestore archive, SHA256SUMS
    (sha256sum -c agrees) and the manifest; odoo-restore brings both back under a new
    name with the same rows and the same files; refuses an existing name without
    --force (exit 3) and replaces it with --force; a corrupted dump is refused (exit 4)."""
    _make_odoo_database(pg, "shop", site["FILESTORE_ROOT"] / "shop")
    pg.sql("CREATE DATABASE not_odoo;")  # owned by postgres: not an Odoo database
    before = _counts(pg, "shop")
    files_before = _tree_sums(site["FILESTORE_ROOT"] / "shop")
    assert before == {"ir_attachment": 3000, "res_partner": 5000}

    t0 = time.monotonic()
    r = _run(pg, site, "odoo-backup")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"\nbackup {took:.1f} s: {r.stdout.strip().splitlines()[-1]}")
    (stamp,) = os.listdir(site["DESTINATION"] / "shop")
    assert not (site["DESTINATION"] / "not_odoo").exists(), "only databases owned by odoo are backed up"
    bdir = site["DESTINATION"] / "shop" / stamp
    assert sorted(os.listdir(bdir)) == ["SHA256SUMS", "filestore.tar.gz", "manifest.json", "shop.dump"]
    assert dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
    assert oct(os.stat(bdir / "shop.dump").st_mode & 0o777) == "0o600"
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bdir).returncode == 0
    manifest = json.loads((bdir / "manifest.json").read_text())
    assert manifest["database"] == "shop" and manifest["collate"] == "C" and manifest["encoding"] == "UTF8"
    assert manifest["files"]["shop.dump"]["bytes"] == os.path.getsize(bdir / "shop.dump")
    status = json.loads((site["STATE_DIR"] / "last-run.json").read_text())
    assert status["ok"] is True and status["databases"]["shop"]["location"] == str(bdir)

    t0 = time.monotonic()
    r = _run(pg, site, "odoo-restore", "--from", str(bdir), "--database", "shop_copy")
    print(f"restore {time.monotonic() - t0:.1f} s: {r.stdout.strip().splitlines()[-1] if r.stdout else r.stderr}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checksums match" in r.stdout
    assert _counts(pg, "shop_copy") == before
    assert _tree_sums(site["FILESTORE_ROOT"] / "shop_copy") == files_before
    owners = pg.sql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public';", db="shop_copy")
    assert owners == "odoo"
    assert pg.sql("SELECT pg_get_userbyid(datdba) || ' ' || datcollate FROM pg_database "
                  "WHERE datname = 'shop_copy';") == "odoo C"
    assert pg.sql("SELECT count(*) FROM res_partner WHERE name % 'Partner 42';", db="shop_copy") != "0"

    # An existing database is never overwritten without --force.
    pg.sql("INSERT INTO res_partner (name) VALUES ('added after the backup');", db="shop_copy")
    r = _run(pg, site, "odoo-restore", "--from", str(bdir), "--database", "shop_copy")
    assert r.returncode == 3 and "refusing to overwrite" in r.stderr, r.stdout + r.stderr
    assert _counts(pg, "shop_copy")["res_partner"] == 5001
    r = _run(pg, site, "odoo-restore", "--from", str(bdir), "--database", "shop_copy", "--force")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _counts(pg, "shop_copy") == before
    assert pg.sql("SELECT count(*) FROM pg_database WHERE datname LIKE 'odoo_restore_%';") == "0"

    # A damaged dump: the checksum says so before anything is touched.
    bad = site["base"] / "damaged"
    shutil.copytree(bdir, bad)
    with open(bad / "shop.dump", "r+b") as f:
        f.seek(100)
        f.write(b"\0\0\0\0")
    r = _run(pg, site, "odoo-restore", "--from", str(bad), "--database", "shop_other")
    assert r.returncode == 4 and "does not match" in r.stderr, r.stdout + r.stderr
    assert pg.sql("SELECT count(*) FROM pg_database WHERE datname = 'shop_other';") == "0"


@pytest.mark.slow
def test_backup_failure_is_an_exit_status(pg, site):
    """No Odoo database: exit 1 and the status file says so; a second run while one holds
    the lock: exit 3; a missing backup directory: exit 2 before anything runs."""
    r = _run(pg, site, "odoo-backup")
    assert r.returncode == 1 and "no database owned by role odoo" in r.stderr, r.stdout + r.stderr
    assert json.loads((site["STATE_DIR"] / "last-run.json").read_text())["ok"] is False
    import fcntl
    with open(site["STATE_DIR"] / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        r = _run(pg, site, "odoo-backup")
    assert r.returncode == 3 and "another odoo-backup is running" in r.stderr
    shutil.rmtree(site["DESTINATION"])
    r = _run(pg, site, "odoo-backup", "--check")
    assert r.returncode == 2 and "does not exist" in r.stderr


FAKE_BOTO3 = {
    "boto3/__init__.py": "from . import session\n",
    "boto3/session.py": """
        import json, os
        class _Events:
            def __init__(self):
                self.handlers = {}
            def register(self, name, handler):
                self.handlers.setdefault(name, []).append(handler)
        class _Meta:
            def __init__(self):
                self.events = _Events()
        class _Request:
            def __init__(self):
                self.headers = {}
        class _Client:
            def __init__(self, config):
                self.config = config
                self.meta = _Meta()
            def _signed_headers(self, operation):
                # What botocore does before signing: the registered hooks see the request.
                request = _Request()
                for handler in self.meta.events.handlers.get(f"before-sign.s3.{operation}", []):
                    handler(request=request, operation_name=operation)
                return request.headers
            def upload_fileobj(self, fileobj, bucket, key, Config=None):
                part = Config.kw["multipart_chunksize"]
                headers = {op: self._signed_headers(op) for op in ("PutObject", "CompleteMultipartUpload",
                                                                   "UploadPart")}
                out = os.path.join(os.environ["FAKE_S3"], bucket, key)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                sizes = []
                with open(out, "wb") as f:
                    while True:
                        data = fileobj.read(part)
                        if not data:
                            break
                        sizes.append(len(data))
                        f.write(data)
                # S3 refuses parts below 5 MiB but the last: every read but the last is whole.
                assert all(n == part for n in sizes[:-1]), sizes
                with open(os.path.join(os.environ["FAKE_S3"], "log"), "a") as log:
                    log.write(json.dumps({"bucket": bucket, "key": key, "reads": sizes, "headers": headers}) + "\\n")
        class _Creds:
            pass
        class Session:
            def __init__(self, **kw):
                self.kw = kw
                with open(os.path.join(os.environ["FAKE_S3"], "session.json"), "w") as f:
                    json.dump(kw, f)
            def get_credentials(self):
                return _Creds()
            def client(self, name, config=None):
                assert name == "s3"
                return _Client(config)
    """,
    "boto3/s3/__init__.py": "",
    "boto3/s3/transfer.py": """
        class TransferConfig:
            def __init__(self, **kw):
                self.kw = kw
    """,
    "botocore/__init__.py": "",
    "botocore/config.py": """
        class Config:
            def __init__(self, **kw):
                self.kw = kw
    """,
}


def _fake_s3(tmp_path: Path) -> tuple[Path, Path]:
    """The FAKE boto3 on a PYTHONPATH of its own, and the directory it stores objects in."""
    fake = tmp_path / "fake"
    for rel, text in FAKE_BOTO3.items():
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text(textwrap.dedent(text))
    store = tmp_path / "s3"
    store.mkdir()
    return fake, store


@pytest.mark.slow
def test_backup_streams_to_s3_manifest_last(pg, site, tmp_path):
    """To S3 (a fake boto3 standing in): every object under <prefix><db>/<UTC time>/, the
    manifest last, the streams handed over in whole parts, the region and the access key
    from backup.conf, and nothing written to the server's disk."""
    fake, store = _fake_s3(tmp_path)
    _make_odoo_database(pg, "shop_s3", site["FILESTORE_ROOT"] / "shop_s3")
    (site["FILESTORE_ROOT"] / "shop_s3" / "ff" / "bigger").write_bytes(os.urandom(12 << 20))
    conf = site["conf"].read_text().replace(f"DESTINATION={site['DESTINATION']}",
                                            "DESTINATION=s3://acme-backups/erp/")
    conf += ("S3_REGION=eu-west-1\nS3_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nS3_SECRET_ACCESS_KEY=abc/def\n"
             "S3_PART_MIB=5\n")
    site["conf"].write_text(conf)
    r = _run(pg, site, "odoo-backup", "--database", "shop_s3", python=True,
             extra_env={"PYTHONPATH": str(fake), "FAKE_S3": str(store)})
    assert r.returncode == 0, r.stdout + r.stderr
    log = [json.loads(line) for line in (store / "log").read_text().splitlines()]
    keys = [e["key"] for e in log]
    stamp = keys[0].split("/")[2]
    assert keys == [f"erp/shop_s3/{stamp}/{n}" for n in ("shop_s3.dump", "filestore.tar.gz", "SHA256SUMS",
                                                         "manifest.json")]
    assert {e["bucket"] for e in log} == {"acme-backups"}
    reads = log[1]["reads"]  # ~15 MiB of filestore in 5 MiB parts, the last one shorter
    assert len(reads) == 4 and reads[:3] == [5 << 20] * 3 and 0 < reads[3] < 5 << 20, reads
    obj = store / "acme-backups" / "erp" / "shop_s3" / stamp
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=obj).returncode == 0
    session = json.loads((store / "session.json").read_text())
    assert session == {"region_name": "eu-west-1", "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
                       "aws_secret_access_key": "abc/def"}
    assert os.listdir(site["DESTINATION"]) == [], "an S3 backup stages nothing locally"
    # A host's own S3 destination (any S3-compatible store): no conditional header.
    assert all(e["headers"] == {"PutObject": {}, "CompleteMultipartUpload": {}, "UploadPart": {}} for e in log)


@pytest.mark.slow
def test_backup_to_the_stack_bucket_creates_objects_only_if_new(pg, site, tmp_path):
    """Issue 11.14: to the aws stack's bucket (S3_WRITE_ONCE=1) every object is created with
    If-None-Match: * (PutObject and the completion of a multipart upload; parts cannot
    carry it), which the bucket policy demands: a backup is never overwritten."""
    fake, store = _fake_s3(tmp_path)
    _make_odoo_database(pg, "shop_once", site["FILESTORE_ROOT"] / "shop_once")
    conf = site["conf"].read_text().replace(f"DESTINATION={site['DESTINATION']}",
                                            "DESTINATION=s3://odoo-backups-small-x/small/")
    site["conf"].write_text(conf + "S3_REGION=eu-west-1\nS3_WRITE_ONCE=1\n")
    r = _run(pg, site, "odoo-backup", "--database", "shop_once", python=True,
             extra_env={"PYTHONPATH": str(fake), "FAKE_S3": str(store)})
    assert r.returncode == 0, r.stdout + r.stderr
    log = [json.loads(line) for line in (store / "log").read_text().splitlines()]
    assert len(log) == 4
    for e in log:
        assert e["headers"]["PutObject"] == {"If-None-Match": "*"}, e
        assert e["headers"]["CompleteMultipartUpload"] == {"If-None-Match": "*"}, e
        assert e["headers"]["UploadPart"] == {}, e
