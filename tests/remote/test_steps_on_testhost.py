"""The step scripts on a real server: a fresh Debian 13 test host with systemd.

Each step script, rendered exactly as `pulumi up` would send it, is fed to
`sudo -n bash -s` over SSH in dependency order, twice. The first pass must take a bare
server to Odoo (the FAKE Odoo archive, installed from source) behind Nginx; the second
must change nothing and restart nothing. Then the server is checked from the outside:
services, ownerships, listening addresses, process model, health and websocket.
A change of `users` is then applied through the one step it concerns.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from components import steps
from components import backup
from components.render import admin_passwd_hash
from components.render import server_files as render_server_files


def server_files(s, z, admin):
    """Every file the server gets: render's and the backup's (the stack bucket on aws)."""
    aws = s.target == "aws"
    return {**render_server_files(s, z, admin),
            **backup.server_files(s, bucket="odoo-backups-test-0a1b2c3" if aws else None,
                                  region="eu-west-1" if aws else None)}
from components.settings import ROOT, load_settings, sizing_for

pytestmark = pytest.mark.e2e

SECRETS = {"adminPassword", "sshPrivateKey"}
ADMIN_PASSWORD = "e2e-admin-password-not-secret"
STEP_TIMEOUT_S = 900


@dataclass(frozen=True)
class RemoteHost:
    host: str
    port: int
    user: str
    key: str

    def host_key_options(self) -> list[str]:
        """Check the host key when the test bed pinned it (known_hosts next to the key)."""
        known = Path(self.key).parent / "known_hosts"
        if known.exists() and any(line.split()[:1] == [self.host] for line in known.read_text().splitlines()):
            return ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}"]
        return ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]

    def ssh_argv(self) -> list[str]:
        return ["ssh", "-i", self.key, "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", *self.host_key_options(),
                f"{self.user}@{self.host}"]

    def run(self, command: str, stdin: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*self.ssh_argv(), command], input=stdin, capture_output=True,
                              text=True, timeout=timeout)

    def sudo(self, command: str, timeout: int = 120) -> str:
        """Run a command as root on the test host and return its stdout (must succeed)."""
        r = self.run(f"sudo -n sh -c {shlex.quote(command)}", timeout=timeout)
        assert r.returncode == 0, f"{command!r} failed ({r.returncode}): {r.stderr}"
        return r.stdout.strip()

    def copy(self, local: str, remote: str) -> None:
        """scp as the SSH user, as CopyToRemote does under Pulumi."""
        r = self.run(f"mkdir -p {shlex.quote(str(Path(remote).parent))}")
        assert r.returncode == 0, r.stderr
        r = subprocess.run(["scp", "-q", "-i", self.key, "-P", str(self.port), "-o", "BatchMode=yes",
                            "-o", "LogLevel=ERROR", *self.host_key_options(),
                            local, f"{self.user}@{self.host}:{remote}"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr


@dataclass(frozen=True)
class StepRun:
    step: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def changed(self) -> int | None:
        last = self.stdout.strip().splitlines()[-1] if self.stdout.strip() else ""
        m = re.fullmatch(rf"odoo-pulumi: {re.escape(self.step)}: changed=(\d+)", last)
        return int(m.group(1)) if m else None


def _require_root_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the test host needs root (systemd-nspawn, veth, mounts)")


def _parse_ready_line(line: str) -> RemoteHost:
    fields = dict(kv.split("=", 1) for kv in line.split())
    return RemoteHost(fields["host"], int(fields["port"]), fields["user"], fields["key"])


@pytest.fixture(scope="module")
def testhost():
    """A fresh test host for this module, removed afterwards.

    ODOO_PULUMI_TESTHOST="host=... port=... user=... key=..." uses a server that is
    already up instead (it must be fresh: the tests provision it).
    """
    given = os.environ.get("ODOO_PULUMI_TESTHOST")
    if given:
        yield _parse_ready_line(given)
        return
    _require_root_tools()
    up = subprocess.run([str(ROOT / "scripts" / "testhost-up")], capture_output=True, text=True, timeout=1800)
    assert up.returncode == 0, f"scripts/testhost-up failed:\n{up.stderr[-3000:]}"
    host = _parse_ready_line(up.stdout.strip().splitlines()[-1])
    try:
        deadline = time.monotonic() + 60
        while host.run("true", timeout=20).returncode != 0:  # sshd may still be settling
            assert time.monotonic() < deadline, "the test host does not answer over SSH"
            time.sleep(1)
        yield host
    finally:
        subprocess.run([str(ROOT / "scripts" / "testhost-down")], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def archive() -> str:
    """The FAKE Odoo source tarball, as an operator's odooArchive."""
    r = subprocess.run([str(ROOT / "scripts" / "make-fake-odoo-archive"), "19.0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def source_address(host: str) -> str:
    """The address this machine reaches `host` from (the stack's admin range)."""
    out = subprocess.run(["ip", "-o", "route", "get", host], capture_output=True, text=True).stdout
    return re.search(r" src (\S+)", out).group(1)


def settings_for(testhost: RemoteHost, archive: str, **over):
    raw = {
        "adminCidrs": [f"{source_address(testhost.host)}/32"],
        "users": 15, "target": "host", "host": testhost.host, "port": testhost.port,
        "sshUser": testhost.user, "odooVersion": "19.0", "odooSource": "archive",
        "odooArchive": archive, "installWkhtmltopdf": False, "postgresVersion": 17,
        "firewall": True, "addonsPaths": ["/srv/odoo-addons"], "timezone": "Europe/Brussels",
    }
    raw.update(over)
    return load_settings(raw, "e2e", SECRETS)


def render(s, host: str, sha: str) -> dict[str, str]:
    files = server_files(s, sizing_for(s), admin_passwd_hash(ADMIN_PASSWORD, s.stack, key="test-key"))
    return steps.render_scripts(s, files, host=host, archive_sha256=sha)


def run_step(testhost: RemoteHost, s, name: str, script: str) -> StepRun:
    r = testhost.run(steps.create_command(s), stdin=script, timeout=STEP_TIMEOUT_S)
    return StepRun(name, r.returncode, r.stdout, r.stderr)


def run_all(testhost: RemoteHost, s, scripts: dict[str, str]) -> dict[str, StepRun]:
    """Every step in plan order (the plan's order respects every dependency)."""
    runs = {}
    for step in steps.plan(s):
        run = run_step(testhost, s, step.name, scripts[step.name])
        runs[step.name] = run
        assert run.returncode == 0, (
            f"step {step.name} failed ({run.returncode}):\n--- stdout\n{run.stdout[-4000:]}\n--- stderr\n{run.stderr[-4000:]}"
        )
        assert run.changed is not None, f"step {step.name} did not end with its changed= line:\n{run.stdout[-2000:]}"
    return runs


def main_pids(testhost: RemoteHost) -> dict[str, str]:
    units = ["odoo", "nginx", "postgresql@17-main"]
    out = testhost.sudo("for u in " + " ".join(units) + "; do systemctl show -p MainPID --value $u; done")
    return dict(zip(units, out.split()))


@pytest.fixture(scope="module")
def provisioned(testhost, archive):
    """Provision the test host twice with the same input; keep both passes' results."""
    s = settings_for(testhost, archive)
    sha = steps.file_sha256(archive)
    testhost.copy(archive, steps.archive_staging_path(s, sha))  # CopyToRemote's job under Pulumi
    scripts = render(s, testhost.host, sha)
    t0 = time.monotonic()
    first = run_all(testhost, s, scripts)
    t1 = time.monotonic()
    pids = main_pids(testhost)
    second = run_all(testhost, s, scripts)
    t2 = time.monotonic()
    print(f"\nfirst pass {t1 - t0:.0f} s, second pass {t2 - t1:.0f} s")
    return {"settings": s, "sha": sha, "first": first, "second": second, "pids_before": pids,
            "pids_after": main_pids(testhost)}


def test_first_pass_changes_the_bare_server(provisioned):
    """Every step that installs or configures something reports changes on a bare server."""
    first = provisioned["first"]
    for name in ("base", "postgresql", "odoo-install", "odoo-config", "nginx"):
        assert first[name].changed > 0, f"{name} changed nothing on a bare server:\n{first[name].stdout}"
    assert first["wait"].changed == 0 and first["health"].changed == 0


def test_second_pass_changes_and_restarts_nothing(provisioned):
    """Idempotence: the same input again reports changed=0 everywhere and keeps every PID."""
    for name, run in provisioned["second"].items():
        assert run.changed == 0, f"{name} changed something on the second run:\n{run.stdout}"
    assert provisioned["pids_before"] == provisioned["pids_after"], "a service was restarted by the second run"
    assert all(pid != "0" for pid in provisioned["pids_after"].values())


def test_services_active_and_enabled(testhost, provisioned):
    """PostgreSQL, Nginx and Odoo run now and start again after a reboot."""
    assert testhost.sudo("systemctl is-active postgresql@17-main nginx odoo").split() == ["active"] * 3
    assert testhost.sudo("systemctl is-enabled postgresql nginx odoo").split() == ["enabled"] * 3


def test_health_and_websocket_through_nginx(testhost, provisioned):
    """Nginx routes /web/health to Odoo's HTTP workers and /websocket to its gevent port."""
    assert "/web/health 200 and /websocket 101" in provisioned["first"]["health"].stdout
    code = testhost.sudo("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/web/health")
    assert code == "200"
    ws = testhost.run(
        "curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H 'Connection: Upgrade' -H 'Upgrade: websocket' "
        "-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' http://127.0.0.1/websocket"
    ).stdout.strip()
    assert ws == "101"


def test_odoo_conf_is_root_odoo_0640(testhost, provisioned):
    """odoo.conf holds the master password hash: readable by odoo, writable by root only."""
    assert testhost.sudo("stat -c %U:%G:%a /etc/odoo/odoo.conf") == "root:odoo:640"
    r = testhost.run("cat /etc/odoo/odoo.conf")
    assert r.returncode != 0, "the SSH user (not in group odoo) can read odoo.conf"


def test_odoo_runs_as_odoo_with_the_configured_workers(testhost, provisioned):
    """The prefork model of the sizing: N HTTP workers, the cron workers and one gevent process, all as odoo."""
    z = sizing_for(provisioned["settings"])
    comms = testhost.sudo("ps -o comm= -u odoo").split()
    assert comms.count("odoo:http") == z.workers
    assert comms.count("odoo:cron") == z.max_cron_threads
    assert comms.count("odoo:gevent") == 1
    assert comms.count("odoo:master") == 1
    assert testhost.sudo("ps -o user= -C odoo:http | sort -u") == "odoo"
    assert testhost.sudo("getent passwd odoo | cut -d: -f6,7") == "/var/lib/odoo:/usr/sbin/nologin"
    assert testhost.run("sudo -n -l -U odoo").stdout.count("may run") == 0


def test_postgresql_and_odoo_listen_on_loopback_only(testhost, provisioned):
    """Only Nginx (80) and sshd face the network; PostgreSQL and Odoo are on 127.0.0.1."""
    listening = testhost.sudo("ss -Hltn | awk '{print $4}'").split()
    for port in ("5432", "8069", "8072"):
        addrs = [a.rsplit(":", 1)[0] for a in listening if a.rsplit(":", 1)[1] == port]
        assert all(a in ("127.0.0.1", "[::1]") for a in addrs), f"port {port} listens on {addrs}"
    assert any(a.rsplit(":", 1)[1] == "8069" for a in listening)
    assert any(a.endswith(":80") and not a.startswith("127.") for a in listening)


def test_database_initialised_once_without_demo(testhost, provisioned):
    """The database exists with base installed, by the odoo role (no superuser)."""
    state = testhost.sudo("runuser -u postgres -- psql -XAt -d odoo -c "
                          "\"SELECT state FROM ir_module_module WHERE name = 'base'\"")
    assert state == "installed"
    role = testhost.sudo("runuser -u postgres -- psql -XAt -c \"SELECT rolsuper, rolcreatedb, rolcreaterole "
                         "FROM pg_roles WHERE rolname = 'odoo'\"")
    assert role == "f|t|f"
    assert "initialised the database odoo" in provisioned["first"]["odoo-config"].stdout
    assert "initialised the database" not in provisioned["second"]["odoo-config"].stdout


def test_wkhtmltopdf_skipped_when_off(testhost, provisioned):
    """installWkhtmltopdf false: nothing downloaded or installed, and the step says so."""
    assert "wkhtmltopdf skipped" in provisioned["first"]["odoo-install"].stdout
    assert testhost.run("command -v wkhtmltopdf").returncode != 0


def test_base_settings_applied(testhost, provisioned):
    """Time zone, locale, automatic updates, firewall (or the reason it cannot be)."""
    assert testhost.sudo("readlink /etc/localtime") == "/usr/share/zoneinfo/Europe/Brussels"
    assert "en_US.utf8" in testhost.sudo("locale -a").split()
    assert 'Unattended-Upgrade "1"' in testhost.sudo("cat /etc/apt/apt.conf.d/20auto-upgrades")
    base_out = provisioned["first"]["base"].stdout
    if "iptables does not work here" in base_out:
        assert testhost.run("sudo -n ufw status").stdout.strip() in ("Status: inactive", "")
    else:
        status = testhost.sudo("ufw status")
        assert "Status: active" in status
        for port in ("80/tcp", "443/tcp"):
            assert re.search(rf"^{port}\s+ALLOW\s+Anywhere", status, re.M), status
        # SSH from the admin range only (issue 11.2)
        admin = provisioned["settings"].admin_cidrs[0].split("/")[0]
        assert re.search(rf"^22/tcp\s+ALLOW\s+{re.escape(admin)}\s*$", status, re.M), status
        assert not re.search(r"^22/tcp\s+ALLOW\s+Anywhere", status, re.M), status


def test_addons_path_created_for_odoo(testhost, provisioned):
    """Extra addons directories exist and belong to odoo."""
    assert testhost.sudo("stat -c %U:%G /srv/odoo-addons") == "odoo:odoo"


def _with_file(s, key: str, content: str, sha: str, host: str) -> dict[str, str]:
    """The scripts with one server file replaced by hand-made content."""
    files = dict(server_files(s, sizing_for(s), admin_passwd_hash(ADMIN_PASSWORD, s.stack, key="test-key")))
    f = files[key]
    files[key] = type(f)(f.path, content, f.owner, f.group, f.mode, f.secret)
    return steps.render_scripts(s, files, host=host, archive_sha256=sha)


def test_rejected_nginx_site_keeps_the_old_one_serving(testhost, provisioned):
    """A site Nginx rejects fails the step with nginx -t's words and never reaches the running Nginx."""
    s, sha = provisioned["settings"], provisioned["sha"]
    good = server_files(s, sizing_for(s), "x")["nginx-site"].content
    before = testhost.sudo("sha256sum /etc/nginx/sites-available/odoo")
    nginx_pid = main_pids(testhost)["nginx"]
    bad = _with_file(s, "nginx-site", good + "\nthis_is_not_a_directive on;\n", sha, testhost.host)
    run = run_step(testhost, s, "nginx", bad["nginx"])
    assert run.returncode != 0
    assert "nginx -t rejected" in run.stderr and "this_is_not_a_directive" in run.stderr
    assert testhost.sudo("sha256sum /etc/nginx/sites-available/odoo") == before
    assert testhost.sudo("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/web/health") == "200"
    assert main_pids(testhost)["nginx"] == nginx_pid
    again = run_step(testhost, s, "nginx", render(s, testhost.host, sha)["nginx"])
    assert again.returncode == 0 and again.changed == 0, again.stdout + again.stderr


def test_rejected_postgresql_tuning_keeps_postgresql_running(testhost, provisioned):
    """Tuning PostgreSQL refuses is put back before any restart: the database stays up."""
    s, sha = provisioned["settings"], provisioned["sha"]
    good = server_files(s, sizing_for(s), "x")["postgresql-tuning"].content
    path = server_files(s, sizing_for(s), "x")["postgresql-tuning"].path
    before = testhost.sudo(f"sha256sum {path}")
    pg_pid = main_pids(testhost)["postgresql@17-main"]
    bad = _with_file(s, "postgresql-tuning", good + "\nmax_connections = banana\n", sha, testhost.host)
    run = run_step(testhost, s, "postgresql", bad["postgresql"])
    assert run.returncode != 0
    assert "PostgreSQL rejects" in run.stderr and "max_connections" in run.stderr
    assert testhost.sudo(f"sha256sum {path}") == before
    assert main_pids(testhost)["postgresql@17-main"] == pg_pid
    again = run_step(testhost, s, "postgresql", render(s, testhost.host, sha)["postgresql"])
    assert again.returncode == 0 and again.changed == 0, again.stdout + again.stderr


def test_users_change_runs_only_odoo_config(testhost, archive, provisioned):
    """A new user count rewrites odoo.conf and restarts Odoo; nothing else changes or restarts."""
    s0 = provisioned["settings"]
    sha = provisioned["sha"]
    s1 = settings_for(testhost, archive, users=16)
    before, after = render(s0, testhost.host, sha), render(s1, testhost.host, sha)
    differing = {k for k in before if before[k] != after[k]}
    assert differing == {"odoo-config", "health"}
    pids = main_pids(testhost)
    for name in ("odoo-config", "health"):
        run = run_step(testhost, s1, name, after[name])
        assert run.returncode == 0, run.stderr
        if name == "odoo-config":
            assert run.changed >= 2, run.stdout  # odoo.conf written, odoo restarted
            assert "restarted odoo" in run.stdout
    pids_after = main_pids(testhost)
    assert pids_after["odoo"] != pids["odoo"]
    assert {k: v for k, v in pids_after.items() if k != "odoo"} == {k: v for k, v in pids.items() if k != "odoo"}
    comms = testhost.sudo("ps -o comm= -u odoo").split()
    assert comms.count("odoo:http") == sizing_for(s1).workers
