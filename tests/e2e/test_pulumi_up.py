"""`pulumi up` for real, end to end: the engine testbed/scripts/engine-env chooses (the installed
pulumi, ODOO_PULUMI_ENGINE_DIR, or one built from Go modules), its command provider, the
`local` stack (target host) against a fresh systemd test host. Odoo is the FAKE fixture
(testbed/fake-odoo); everything around it is real. The phases run in order and share
one host and one state.

PULUMI_HOME: the one of the environment when set (its installed plugins are used as they
are), else a fresh one under the work directory, so the run never touches ~/.pulumi."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest

from tests.e2e.conftest import ENGINE, TIMINGS

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def parse_exports(text: str, env: dict) -> dict:
    """Apply `export K=V` lines (as engine-env and the local env file print them)."""
    out = dict(env)
    for line in text.splitlines():
        m = re.match(r"export (\w+)=(.*)$", line.strip())
        if m:
            value = sh(["bash", "-c", f"printf %s {m.group(2)}"], env=out).stdout
            out[m.group(1)] = value
    return out


class Bed:
    """The shared state of the phases: host, work dir, environment, logs."""

    def __init__(self):
        self.work = Path(tempfile.mkdtemp(prefix="odoo-pulumi-e2e-"))
        self.logs: list[str] = []
        self.host: dict[str, str] = {}
        self.env: dict[str, str] = {}

    @property
    def project(self) -> Path:
        return self.work / "project"

    def pulumi(self, *args, check=True, timeout=1500):
        r = sh(["pulumi", *args, "--stack", "local", "--non-interactive"], cwd=self.project, env=self.env,
               timeout=timeout)
        self.logs.append(f"$ pulumi {' '.join(args)}\n{r.stdout}{r.stderr}")
        if check:
            assert r.returncode == 0, f"pulumi {' '.join(args)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        return r

    def ssh(self, command: str, check=True) -> str:
        r = sh(["ssh", "-i", self.host["key"], "-p", self.host["port"], "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                f"{self.host['user']}@{self.host['host']}", command], timeout=120)
        if check:
            assert r.returncode == 0, f"{command}: {r.stderr}"
        return r.stdout.strip()

    def workers_live(self) -> int:
        pid = self.ssh("systemctl show -p MainPID --value odoo")
        return int(self.ssh(f"pgrep -c -P {pid} -x odoo:http", check=False) or 0)


def timed(name):
    class _T:
        def __enter__(self):
            self.t = time.monotonic()

        def __exit__(self, *exc):
            TIMINGS.append((name, time.monotonic() - self.t))
    return _T()


def prepare_bed(b, env: dict) -> str:
    """The engine, a fresh test host and the `local` stack on it with the FAKE Odoo archive,
    in b.work: sets b.env, b.host and b.password; returns engine-env's log."""
    r = sh([str(ROOT / "testbed/scripts/engine-env")], env=env, timeout=3000)
    assert r.returncode == 0, r.stderr
    b.env = parse_exports(r.stdout, env)
    up = sh([str(ROOT / "testbed/scripts/testhost-up")], timeout=900)
    assert up.returncode == 0, up.stderr[-3000:]
    b.host = dict(kv.split("=", 1) for kv in up.stdout.strip().splitlines()[-1].split())
    archive = sh([str(ROOT / "testbed/scripts/make-fake-odoo-archive"), "19.0", str(b.work)]).stdout.strip().splitlines()[-1]
    s = sh([str(ROOT / "testbed/scripts/local-stack"), str(b.work), *(f"{k}={v}" for k, v in b.host.items()),
            f"archive={archive}"], env=b.env, timeout=300)
    assert s.returncode == 0, s.stdout + s.stderr
    b.env = parse_exports((b.work / "env").read_text(), b.env)
    b.password = (b.work / "admin-password").read_text().strip()
    return r.stderr


@pytest.fixture(scope="module")
def bed():
    b = Bed()
    with timed("setup: engine, fresh test host, stack"):
        env = {**os.environ, "PULUMI_HOME": os.environ.get("PULUMI_HOME") or str(b.work / "pulumi-home")}
        engine_log = prepare_bed(b, env)
        ENGINE.extend(line.removeprefix("engine-env: ") for line in engine_log.splitlines()
                      if line.startswith(("engine-env: Pulumi CLI", "engine-env: command provider")))
        b.user_password = (b.work / "admin-user-password").read_text().strip()
        b.key_material = Path(b.host["key"]).read_text().splitlines()[1]
    yield b
    if os.environ.get("ODOO_PULUMI_E2E_LOG"):  # keep the engine's output (docs/testbed.md)
        Path(os.environ["ODOO_PULUMI_E2E_LOG"]).write_text("\n".join(b.logs))
    sh([str(ROOT / "testbed/scripts/testhost-down")], timeout=300)
    shutil.rmtree(b.work, ignore_errors=True)


def http_get(host: str, path: str) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(f"http://{host}{path}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def websocket_status(host: str) -> str:
    """The status line Nginx answers to a websocket upgrade on /websocket."""
    key = b64encode(os.urandom(16)).decode()
    with socket.create_connection((host, 80), timeout=10) as s:
        s.sendall((f"GET /websocket HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        return s.recv(4096).decode(errors="replace").split("\r\n")[0]


def test_phase1_first_up_provisions_everything(bed):
    with timed("phase 1: first pulumi up"):
        bed.pulumi("up", "--yes", "--skip-preview")
    for unit in ("postgresql", "nginx", "odoo"):
        assert bed.ssh(f"systemctl is-active {unit}") == "active", unit
        assert bed.ssh(f"systemctl is-enabled {unit}") == "enabled", unit
    assert bed.ssh("systemctl is-enabled odoo-backup.timer") == "enabled", "nightly backup not armed"
    status, headers, body = http_get(bed.host["host"], "/web/health")
    assert status == 200 and json.loads(body) == {"status": "pass"}
    assert websocket_status(bed.host["host"]).startswith("HTTP/1.1 101"), "websocket not switched"
    assert bed.ssh("sudo stat -c '%U:%G %a' /etc/odoo/odoo.conf") == "root:odoo 640"
    pid = bed.ssh("systemctl show -p MainPID --value odoo")
    assert bed.ssh(f"ps -o user= -p {pid}") == "odoo"
    outputs = json.loads(bed.pulumi("stack", "output", "--json").stdout)
    # 15 users need 3 HTTP workers; the host's 2 cores allow 4 and its 4 GiB hold them
    assert bed.workers_live() == outputs["workers"] == 4
    # Every export is readable as it is: none became secret on the way (health's verdict
    # comes from a step whose script is secret; its stdout is not).
    assert "[secret]" not in json.dumps(outputs) and outputs["health"], outputs
    listening = bed.ssh("sudo ss -H -ltnp")
    for port in ("5432", "8069", "8072"):
        addrs = [l.split()[3] for l in listening.splitlines() if l.split()[3].endswith(f":{port}")]
        assert addrs and all(a.startswith(("127.0.0.1:", "[::1]:")) for a in addrs), (port, addrs)
    score = bed.ssh("sudo systemd-analyze security odoo.service --no-pager | tail -n 1", check=False)
    TIMINGS.append((f"  systemd-analyze security odoo.service: {score.strip()[:60]}", 0.0))


def test_phase2_second_up_changes_nothing(bed):
    with timed("phase 2: preview --expect-no-changes"):
        bed.pulumi("preview", "--expect-no-changes")


def changed_steps(preview_json: str) -> set[str]:
    steps = json.loads(preview_json).get("steps", [])
    return {s["urn"].split("::")[-1] for s in steps if s.get("op") not in ("same", None)}


def test_phase3_users_change_within_the_host_changes_nothing_a_limit_only_odoo_config(bed):
    """More users within what the host's workers carry: the server stays as it is (the
    workers are every one the cores allow). A changed limit rewrites odoo.conf: only
    odoo-config (and health, which fingerprints every script) runs again."""
    bed.pulumi("config", "set", "users", "24")
    with timed("phase 3a: preview --json after users 15 -> 24 (4 workers either way)"):
        r = bed.pulumi("preview", "--json")
    assert changed_steps(r.stdout) <= {"odoo-pulumi-local"}, changed_steps(r.stdout)
    bed.pulumi("config", "set", "limitTimeCpu", "900")
    with timed("phase 3b: preview --json after limitTimeCpu 600 -> 900"):
        r = bed.pulumi("preview", "--json")
    changed = changed_steps(r.stdout) - {"odoo-pulumi-local"}
    assert changed and changed <= {"odoo-odoo-config", "odoo-health"}, changed
    with timed("phase 3c: pulumi up with the new limit"):
        bed.pulumi("up", "--yes", "--skip-preview")
    assert "limit_time_cpu = 900" in bed.ssh("sudo grep -E '^limit_time_cpu' /etc/odoo/odoo.conf")
    assert bed.workers_live() == 4


def test_phase4_up_waits_for_a_host_that_is_down(bed):
    """The host is stopped; `up` is started while it is down and must wait (dial
    retries), not fail after seconds, then succeed once the host is back."""
    bed.pulumi("config", "set", "users", "15")
    bed.pulumi("config", "rm", "limitTimeCpu")
    assert sh([str(ROOT / "testbed/scripts/testhost-stop")], timeout=300).returncode == 0
    result = {}

    def run_up():
        result["r"] = bed.pulumi("up", "--yes", "--skip-preview", check=False)

    with timed("phase 4: up while the host boots (host down ~15 s)"):
        t = threading.Thread(target=run_up)
        t.start()
        time.sleep(15)
        assert t.is_alive(), "pulumi up gave up while the host was down: " + str(result.get("r"))
        assert sh([str(ROOT / "testbed/scripts/testhost-start"), "--no-wait"], timeout=300).returncode == 0
        t.join(timeout=1200)
    r = result["r"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert bed.workers_live() == 4


def test_phase5_destroy_and_no_plain_secret_anywhere(bed):
    export = bed.pulumi("stack", "export").stdout
    with timed("phase 5: pulumi destroy"):
        bed.pulumi("destroy", "--yes", "--skip-preview")
    state = "".join(p.read_text(errors="replace") for p in (bed.work / "state").rglob("*") if p.is_file())
    for where, text in (("stack export", export), ("state files", state), ("engine output", "\n".join(bed.logs))):
        assert bed.password not in text, f"admin password in {where}"
        assert bed.user_password not in text, f"administrator user password in {where}"
        # odoo-config carries both passwords base64-encoded (the server hashes them)
        for pw in (bed.password, bed.user_password):
            assert b64encode(pw.encode()).decode() not in text, f"a base64 password in {where}"
        assert bed.key_material not in text, f"private key in {where}"
    # destroy on a host target leaves the data in place (keepDataOnDestroy defaults to true)
    assert bed.ssh("sudo -u postgres psql -XAtc \"select 1 from pg_database where datname='odoo'\"") == "1"
