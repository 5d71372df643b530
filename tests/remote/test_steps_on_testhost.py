"""The step scripts on a real server: a fresh Debian 13 test host with systemd.

Each step script, rendered exactly as `pulumi up` would send it, is fed to
`sudo -n bash -s` over SSH in dependency order, twice. The first pass must take a bare
server to Odoo (the FAKE Odoo archive, installed from source) behind Nginx; the second
must change nothing and restart nothing. Then the server is checked from the outside:
services, ownerships, listening addresses, process model, health and websocket.
A change of `users` is then applied through the one step it concerns.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from passlib.context import CryptContext

from odoo_pulumi import steps
from odoo_pulumi import backup
from odoo_pulumi.render import server_files as render_server_files


def server_files(s, z):
    """Every file the server gets: render's and the backup's (the stack bucket on aws)."""
    aws = s.target == "aws"
    return {**render_server_files(s, z),
            **backup.server_files(s, bucket="odoo-backups-test-0a1b2c3" if aws else None,
                                  region="eu-west-1" if aws else None)}
from odoo_pulumi.settings import ROOT, load_settings, sizing_for

pytestmark = pytest.mark.e2e

SECRETS = {"adminPassword", "adminUserPassword", "sshPrivateKey"}
ADMIN_PASSWORD = "e2e-admin-password-not-secret"
ADMIN_USER_PASSWORD = "e2e-admin-user-password-not-secret"
STEP_TIMEOUT_S = 900
# How Odoo 19 verifies res_users.password (res_users.py, MIN_ROUNDS) and admin_passwd
# (tools/config.py): passlib, 600,000 rounds.
ODOO_USERS = CryptContext(["pbkdf2_sha512", "plaintext"], deprecated=["auto"], pbkdf2_sha512__rounds=600_000)
ODOO_CONFIG = CryptContext(["pbkdf2_sha512", "plaintext"], deprecated=["plaintext"], pbkdf2_sha512__rounds=600_000)


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
    up = subprocess.run([str(ROOT / "testbed" / "scripts" / "testhost-up")], capture_output=True, text=True, timeout=1800)
    assert up.returncode == 0, f"testbed/scripts/testhost-up failed:\n{up.stderr[-3000:]}"
    host = _parse_ready_line(up.stdout.strip().splitlines()[-1])
    try:
        deadline = time.monotonic() + 60
        while host.run("true", timeout=20).returncode != 0:  # sshd may still be settling
            assert time.monotonic() < deadline, "the test host does not answer over SSH"
            time.sleep(1)
        yield host
    finally:
        subprocess.run([str(ROOT / "testbed" / "scripts" / "testhost-down")], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def archive() -> str:
    """The FAKE Odoo source tarball, as an operator's odooArchive."""
    r = subprocess.run([str(ROOT / "testbed" / "scripts" / "make-fake-odoo-archive"), "19.0"],
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


def render(s, host: str, sha: str, admin: str = ADMIN_PASSWORD, user: str = ADMIN_USER_PASSWORD) -> dict[str, str]:
    files = server_files(s, sizing_for(s))
    return steps.render_scripts(s, files, host=host, admin_password=admin, admin_user_password=user,
                                archive_sha256=sha)


def stage_programs(testhost: RemoteHost, s, name: str) -> None:
    """CopyToRemote's job under Pulumi: the programs step `name` installs (steps.programs),
    uploaded as the SSH user to their staging paths, unless already there."""
    for program, user in steps.programs(s).values():
        if user == name and testhost.run(f"test -f {shlex.quote(program.staged)}").returncode != 0:
            testhost.copy(program.source, program.staged)


def run_step(testhost: RemoteHost, s, name: str, script: str) -> StepRun:
    stage_programs(testhost, s, name)
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
    assert first["wait"].changed == 1 and "installed the step library" in first["wait"].stdout  # and nothing else
    assert first["health"].changed == 1, first["health"].stdout  # installed odoo-acceptance, changed nothing else


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


def conf_admin_passwd(testhost: RemoteHost) -> str:
    return testhost.sudo("sed -n 's/^admin_passwd = //p' /etc/odoo/odoo.conf")


def admin_user_stored(testhost: RemoteHost) -> str:
    return testhost.sudo("runuser -u postgres -- psql -XAt -d odoo -c \"SELECT u.password FROM res_users u "
                         "JOIN ir_model_data d ON d.res_id = u.id AND d.model = 'res.users' "
                         "WHERE d.module = 'base' AND d.name = 'user_admin'\"")


def test_passwords_hashed_on_the_server_kept_and_changed_alone(testhost, provisioned):
    """Issue 13: the server makes both hashes (the program never does), in the format Odoo
    verifies without rehashing; the second pass kept them (changed=0 above); a new
    adminPassword rewrites odoo.conf alone, a new adminUserPassword the user's hash alone,
    and neither password nor hash shows in the step's output."""
    s, sha = provisioned["settings"], provisioned["sha"]
    conf_hash, user_hash = conf_admin_passwd(testhost), admin_user_stored(testhost)
    assert conf_hash.startswith("$pbkdf2-sha512$600000$") and user_hash.startswith("$pbkdf2-sha512$600000$")
    assert ODOO_CONFIG.verify_and_update(ADMIN_PASSWORD, conf_hash) == (True, None)
    assert ODOO_USERS.verify_and_update(ADMIN_USER_PASSWORD, user_hash) == (True, None)
    assert conf_hash != user_hash

    master, user = "e2e-another-master-password", "e2e-another-user-password"
    run = run_step(testhost, s, "odoo-config", render(s, testhost.host, sha, admin=master)["odoo-config"])
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "wrote /etc/odoo/odoo.conf" in out and "restarted odoo" in out and "administrator's password" not in out
    conf2 = conf_admin_passwd(testhost)
    assert conf2 != conf_hash and ODOO_CONFIG.verify(master, conf2) and admin_user_stored(testhost) == user_hash

    run2 = run_step(testhost, s, "odoo-config", render(s, testhost.host, sha, admin=master, user=user)["odoo-config"])
    out2 = run2.stdout + run2.stderr
    assert run2.returncode == 0, out2
    assert "set the administrator's password" in out2 and "wrote /etc/odoo/odoo.conf" not in out2
    assert conf_admin_passwd(testhost) == conf2 and ODOO_USERS.verify(user, admin_user_stored(testhost))
    for text in (master, user, conf2, admin_user_stored(testhost), ADMIN_PASSWORD, ADMIN_USER_PASSWORD):
        assert text not in out + out2

    # Back to the provisioned passwords: both hashes made again, then nothing to do.
    original = render(s, testhost.host, sha)["odoo-config"]
    assert run_step(testhost, s, "odoo-config", original).changed >= 2
    again = run_step(testhost, s, "odoo-config", original)
    assert again.returncode == 0 and again.changed == 0, again.stdout + again.stderr
    assert ODOO_USERS.verify(ADMIN_USER_PASSWORD, admin_user_stored(testhost))


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


def test_odoo_serves_on_systemds_socket_with_the_sized_queue(testhost, provisioned):
    """odoo.socket holds 127.0.0.1:8069 with the sizing's queue and hands it to Odoo (its
    log says so). Odoo's own socket would queue 8 x workers connections, then drop."""
    z = sizing_for(provisioned["settings"])
    assert testhost.sudo("systemctl is-enabled odoo.socket") == "enabled"
    assert testhost.sudo("systemctl is-active odoo.socket") == "active"
    # For a listening socket, ss's Send-Q column is its backlog.
    state, recv_q, send_q, local, *_ = testhost.sudo("ss -Hltn 'sport = :8069'").split()
    assert (state, local, int(send_q)) == ("LISTEN", "127.0.0.1:8069", z.listen_backlog)
    assert z.listen_backlog > 8 * z.workers
    owners = testhost.sudo("ss -Hltnp 'sport = :8069'")
    assert '"systemd",pid=1' in owners and owners.count("pid=") > 1, owners  # systemd and Odoo's processes
    log = testhost.sudo("journalctl -u odoo --no-pager -o cat -n 200")
    assert "running through socket activation" in log


def test_a_request_while_odoo_is_stopped_waits_and_is_served(testhost, provisioned):
    """A restart (a deploy, an upgrade) refuses no request: with Odoo stopped, the next
    request waits in odoo.socket's queue, systemd starts Odoo, and it is answered. With
    Odoo's own socket, Nginx got 'connection refused' and answered 502."""
    testhost.sudo("systemctl stop odoo")
    assert testhost.sudo("systemctl is-active odoo || true") != "active"
    status = _curl(testhost, "--max-time 60 http://127.0.0.1/web/health").split()[0]
    assert status == "200", testhost.sudo("systemctl status odoo odoo.socket --no-pager || true")
    assert testhost.sudo("systemctl is-active odoo") == "active"


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
    files = dict(server_files(s, sizing_for(s)))
    f = files[key]
    files[key] = type(f)(f.path, content, f.owner, f.group, f.mode, f.secret)
    return steps.render_scripts(s, files, host=host, admin_password=ADMIN_PASSWORD,
                                admin_user_password=ADMIN_USER_PASSWORD, archive_sha256=sha)


def test_rejected_nginx_site_keeps_the_old_one_serving(testhost, provisioned):
    """A site Nginx rejects fails the step with nginx -t's words and never reaches the running Nginx."""
    s, sha = provisioned["settings"], provisioned["sha"]
    good = server_files(s, sizing_for(s))["nginx-site"].content
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
    good = server_files(s, sizing_for(s))["postgresql-tuning"].content
    path = server_files(s, sizing_for(s))["postgresql-tuning"].path
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


def test_odoo_conf_change_runs_only_odoo_config(testhost, archive, provisioned):
    """A new time limit rewrites odoo.conf and restarts Odoo; nothing else changes or
    restarts. (A users change within the host's capacity changes no script at all:
    tests/test_steps.py.)"""
    s0 = provisioned["settings"]
    sha = provisioned["sha"]
    s1 = settings_for(testhost, archive, limitTimeCpu=900)
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


def test_loadtest_against_the_fake_odoo(testhost, provisioned, tmp_path):
    """`make loadtest`'s mechanics on a provisioned server (the FAKE Odoo behind Nginx):
    users log in once and run the office mix, the run stops by itself after warm-up +
    duration, the server's CPU and Odoo's memory come over SSH, the report, its verdict
    and the plot are written. (Real Odoo figures: docs/real-odoo.md.)"""
    from odoo_pulumi import loadtest

    out = tmp_path / "loadtest"
    password_file = tmp_path / "admin-user-password"
    password_file.write_text(ADMIN_USER_PASSWORD + "\n")
    argv = ["--url", f"http://{testhost.host}", "--users", "2,4", "--warmup", "2", "--duration", "6",
            "--think", "0.3", "--timeout", "10", "--ssh", f"{testhost.user}@{testhost.host}:{testhost.port}",
            "--ssh-key", testhost.key, "--out", str(out), "--label", "fake odoo", "--seed", "7",
            "--password-file", str(password_file)]
    for option in testhost.host_key_options()[1::2]:
        argv += ["--ssh-option", option]
    t0 = time.monotonic()
    rc = loadtest.main(argv)
    elapsed = time.monotonic() - t0
    assert elapsed < 2 * (2 + 6) + 2 * 10 + 10, f"the load test did not stop by itself ({elapsed:.0f} s)"
    data = __import__("json").loads((out / "report.json").read_text())
    steps_ = data["steps"]
    assert [s["users"] for s in steps_] == [2, 4]
    for s in steps_:
        assert s["requests"] > 0 and s["errors"] == {}, s
        assert {"partner_list", "partner_read", "name_search", "product_list", "assets"} <= set(s["by_action"]), s
        assert s["server"]["odoo_processes"] >= 3 and s["server"]["odoo_rss_mib_max_total"] > 0, s["server"]
        assert s["server"]["cpu_percent_mean"] is not None
    assert rc == 0 and "verdict: holds 4 users" in (out / "report.txt").read_text()
    assert (out / "latency.svg").read_text().startswith("<svg")


# --- what a real Odoo 19 exposed at the operating-system level (issue 9) ----------------
# The FAKE Odoo does what Odoo does there (testbed/tests/test_fake_odoo_os.py): its cron worker
# calls os.nice(10), its workers setrlimit, x_sendfile makes Nginx open the filestore's
# files, 19.0 warns about options it cannot parse. Each test below fails with the fix
# it names reverted.

def _ps_odoo(testhost: RemoteHost) -> list[tuple[str, int, str]]:
    """(pid, niceness, comm) of every process of the user odoo."""
    rows = testhost.sudo("ps -o pid=,ni=,comm= -u odoo").splitlines()
    return [(r.split()[0], int(r.split()[1]), r.split()[2]) for r in rows]


def test_cron_worker_lives_niced_under_the_system_call_filter(testhost, provisioned):
    """The unit allows setpriority and setrlimit back from @resources: the cron worker runs
    at niceness 10 and stays (with the filter denying them it died of SIGSYS at start and
    was respawned until the master gave up), HTTP workers hold RLIMIT_AS = limit_memory_hard."""
    s = provisioned["settings"]
    unit = testhost.sudo("systemctl show -p SystemCallFilter --value odoo")
    assert "setpriority" in unit.split() and "reboot" not in unit.split()  # @privileged stays denied
    procs = _ps_odoo(testhost)
    crons = [(pid, ni) for pid, ni, comm in procs if comm == "odoo:cron"]
    assert crons and all(ni == 10 for _, ni in crons), procs
    time.sleep(3)
    assert [(pid, ni) for pid, ni, comm in _ps_odoo(testhost) if comm == "odoo:cron"] == crons, "the cron worker was respawned"
    assert testhost.sudo("systemctl show -p NRestarts --value odoo") == "0"
    since = testhost.sudo("systemctl show -p ActiveEnterTimestamp --value odoo")
    journal = testhost.sudo(f"journalctl -u odoo --no-pager -o cat --since {shlex.quote(since)}")
    assert "died" not in journal and "SIGSYS" not in journal, journal[-2000:]
    http_pid = next(pid for pid, _, comm in procs if comm == "odoo:http")
    limits = testhost.sudo(f"grep 'Max address space' /proc/{http_pid}/limits").split()
    assert int(limits[3]) == sizing_for(s).limit_memory_hard


def _curl(testhost: RemoteHost, args: str) -> str:
    """curl on the test host through Nginx on 127.0.0.1; returns '<status> <bytes>'."""
    return testhost.sudo(f"curl -s -o /tmp/odoo-pulumi-curl.out -w '%{{http_code}} %{{size_download}}' {args}")


def test_x_sendfile_assets_and_attachments_through_nginx(testhost, provisioned):
    """Odoo answers with X-Accel-Redirect and Nginx (www-data) opens the filestore's file:
    an asset bundle and a 200 kB attachment come back whole (403 when Nginx cannot read
    the filestore). The files are the group odoo-filestore's; www-data reads nothing else."""
    assert _curl(testhost, "http://127.0.0.1/web/login").split()[0] == "200"
    bundles = re.findall(r'(?:href|src)="(/web/assets/[^"]+)"', testhost.sudo("cat /tmp/odoo-pulumi-curl.out"))
    assert bundles, "the login page loads no asset bundle"
    for bundle in bundles:
        status, size = _curl(testhost, f"http://127.0.0.1{bundle}").split()
        assert status == "200" and int(size) > 4096, (bundle, status, size)
        asset_sha = testhost.sudo("sha1sum /tmp/odoo-pulumi-curl.out").split()[0]
        stored = testhost.sudo(f"stat -c '%U:%G:%a' /var/lib/odoo/filestore/odoo/{asset_sha[:2]}/{asset_sha}")
        assert stored == "odoo:odoo-filestore:640"
    testhost.sudo("head -c 200000 /dev/urandom > /tmp/odoo-pulumi-attachment")
    status, _ = _curl(testhost, "--data-binary @/tmp/odoo-pulumi-attachment http://127.0.0.1/fake/attachment").split()
    assert status == "200"
    url = json.loads(testhost.sudo("cat /tmp/odoo-pulumi-curl.out"))["url"]
    status, size = _curl(testhost, f"http://127.0.0.1{url}").split()
    assert (status, size) == ("200", "200000")
    assert testhost.sudo("cmp /tmp/odoo-pulumi-curl.out /tmp/odoo-pulumi-attachment && echo same") == "same"
    assert testhost.sudo("stat -c '%U:%G:%a' /var/lib/odoo /var/lib/odoo/filestore").split() == [
        "odoo:odoo:711", "odoo:odoo-filestore:2750"]
    assert "odoo" not in testhost.sudo("id -nG www-data").split()
    for forbidden in ("cat /etc/odoo/odoo.conf", "ls /var/lib/odoo", "ls /var/lib/odoo/sessions"):
        assert testhost.run(f"sudo -n runuser -u www-data -- {forbidden}").returncode != 0, forbidden
    provisioned["attachment_url"] = url


def test_filestore_written_before_is_handed_to_nginx_group(testhost, provisioned):
    """A filestore from before (odoo:odoo, no setgid, e.g. a kept data volume) is given to
    the group by odoo-install; the next run changes nothing."""
    s, sha = provisioned["settings"], provisioned["sha"]
    testhost.sudo("install -d -o odoo -g odoo -m 0750 /var/lib/odoo/filestore/legacy/ab "
                  "&& printf old > /var/lib/odoo/filestore/legacy/ab/abcd && chown odoo:odoo "
                  "/var/lib/odoo/filestore/legacy/ab/abcd && chmod 0600 /var/lib/odoo/filestore/legacy/ab/abcd "
                  "&& chgrp odoo /var/lib/odoo/filestore/legacy && chmod g-s /var/lib/odoo/filestore/legacy")
    script = render(s, testhost.host, sha)["odoo-install"]
    run = run_step(testhost, s, "odoo-install", script)
    assert run.returncode == 0 and "gave the filestore" in run.stdout, run.stdout + run.stderr
    assert testhost.sudo("stat -c '%G:%a' /var/lib/odoo/filestore/legacy /var/lib/odoo/filestore/legacy/ab "
                         "/var/lib/odoo/filestore/legacy/ab/abcd").split() == [
        "odoo-filestore:2750", "odoo-filestore:2750", "odoo-filestore:640"]
    again = run_step(testhost, s, "odoo-install", script)
    assert again.returncode == 0 and again.changed == 0, again.stdout
    testhost.sudo("rm -rf /var/lib/odoo/filestore/legacy")


def test_restored_filestore_is_served_through_nginx(testhost, provisioned):
    """odoo-restore gives the restored files the filestore's group and setgid: the
    attachment uploaded above downloads through Nginx after a backup and a restore."""
    url = provisioned.get("attachment_url") or pytest.skip("needs the attachment uploaded above")
    testhost.sudo("systemctl start odoo-backup.service", timeout=600)
    stamp = testhost.sudo("ls /var/backups/odoo/odoo | tail -n 1")
    r = testhost.run(f"sudo -n odoo-restore --from /var/backups/odoo/odoo/{stamp} --database odoo --force", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.monotonic() + 60
    while (status := _curl(testhost, f"http://127.0.0.1{url}").split()[0]) == "502" and time.monotonic() < deadline:
        time.sleep(1)
    assert status == "200"
    assert testhost.sudo("cmp /tmp/odoo-pulumi-curl.out /tmp/odoo-pulumi-attachment && echo same") == "same"
    assert testhost.sudo("find /var/lib/odoo/filestore/odoo ! -group odoo-filestore | wc -l") == "0"
    assert testhost.sudo("find /var/lib/odoo/filestore/odoo \\( -type d ! -perm -2050 \\) -o -perm /0007 | wc -l") == "0"


def test_no_option_warnings_from_odoo(testhost, provisioned):
    """Odoo 19 warns for every non-boolean option written as False and for
    --without-demo=all: odoo.conf leaves unset options out and the database is
    initialised with the version's own flag, so neither the service's journal nor the
    initialisation log has a warning."""
    journal = testhost.sudo("journalctl -u odoo --no-pager -o cat")
    assert "isn't a boolean option" not in journal and "unknown option" not in journal, journal[-3000:]
    init_log = testhost.sudo("cat /var/lib/odoo-pulumi/db-init.log")
    assert "FAKE Odoo 19.0 starting" in init_log
    assert " WARNING " not in init_log, init_log


def test_odoo_serves_again_after_postgresql_stop_and_start(testhost, provisioned):
    """PostgreSQL stopped for 20 s (an upgrade, maintenance), then started: Odoo serves
    again within seconds, nobody touching it. With Requires=postgresql.service Odoo was
    stopped along with PostgreSQL and stayed down (502)."""
    health = "'http://127.0.0.1/web/health?db_server_status=1'"
    assert _curl(testhost, health).split()[0] == "200"
    testhost.sudo("systemctl stop postgresql")
    time.sleep(20)
    assert testhost.sudo("systemctl is-active postgresql@17-main || true") != "active"
    testhost.sudo("systemctl start postgresql")
    t0 = time.monotonic()
    while (status := _curl(testhost, health).split()[0]) != "200" and time.monotonic() - t0 < 30:
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    print(f"\nOdoo served again {elapsed:.1f} s after PostgreSQL started")
    assert status == "200", f"still {status} 30 s after PostgreSQL started: " + testhost.sudo("systemctl status odoo --no-pager || true")
    assert testhost.sudo("systemctl is-active odoo") == "active"


def _probe_wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel, built by hand (no build tool needed)."""
    import base64
    import hashlib
    import zipfile

    members = {
        "odoo_pulumi_probe/__init__.py": b"# odoo-pulumi test probe\n",
        "odoo_pulumi_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: odoo-pulumi-probe\nVersion: 1.0\n",
        "odoo_pulumi_probe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: odoo-pulumi-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for name, data in members.items()) + "odoo_pulumi_probe-1.0.dist-info/RECORD,,\n"
    members["odoo_pulumi_probe-1.0.dist-info/RECORD"] = record.encode()
    wheel = directory / "odoo_pulumi_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return wheel


def test_plain_http_index_is_used_by_pip(testhost, provisioned, tmp_path):
    """An http:// pipIndexUrl: the pip options the odoo-install step passes make the venv's
    pip on the server use it (without --trusted-host pip ignores the index: "not a trusted
    or secure host"). The index is a PEP 503 page on this machine's end of the bridge."""
    import functools
    import http.server
    import threading

    if os.environ.get("ODOO_PULUMI_TESTHOST"):
        pytest.skip("needs the local test host's bridge to serve the index")
    bridge = testhost.host.rsplit(".", 1)[0] + ".1"
    wheel = _probe_wheel(tmp_path)
    (tmp_path / "simple" / "odoo-pulumi-probe").mkdir(parents=True)
    (tmp_path / "simple" / "odoo-pulumi-probe" / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="../../{wheel.name}">{wheel.name}</a></body></html>\n')
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer((bridge, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://{bridge}:{server.server_address[1]}/simple/"
        s = settings_for(testhost, provisioned["settings"].odoo_archive, pipIndexUrl=url)
        args = steps._pip_args(s)
        assert "--trusted-host" in args
        assert " ".join(shlex.quote(a) for a in args) in render(s, testhost.host, provisioned["sha"])["odoo-install"]
        pip = ("/opt/odoo/venv/bin/pip download --no-deps --disable-pip-version-check --no-input -q "
               "-d /tmp/odoo-pulumi-probe {} odoo-pulumi-probe==1.0")
        r = testhost.run("sudo -n " + pip.format(" ".join(shlex.quote(a) for a in args)), timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert testhost.sudo("ls /tmp/odoo-pulumi-probe") == wheel.name
        untrusted = testhost.run("sudo -n " + pip.format(f"--index-url {shlex.quote(url)}"), timeout=120)
        assert untrusted.returncode != 0 and "not a trusted or secure host" in untrusted.stdout + untrusted.stderr
    finally:
        server.shutdown()
        testhost.run("sudo -n rm -rf /tmp/odoo-pulumi-probe")
