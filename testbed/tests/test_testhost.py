"""The test host itself: what the end-to-end tests rely on when they provision it.

testbed/scripts/testhost-up must give a Debian with systemd as PID 1, reachable by SSH as a
NOPASSWD sudo user, whose apt installs from the local repository only; PostgreSQL and
Nginx must run under its systemd, ufw must filter, a venv must work; testhost-stop and
testhost-start must keep its disk; testhost-down must leave nothing behind.
Runs only in the e2e group (root, about two minutes with a built cache).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SLOT = int(os.environ.get("ODOO_PULUMI_TESTHOST_SLOT", "0"))  # see testbed/scripts/lib/testhost.sh
SUFFIX = f"-{SLOT}" if SLOT else ""
RUN = Path(f"/run/odoo-pulumi/testhost{SUFFIX}")
INSTANCE = Path(os.environ.get("ODOO_PULUMI_CACHE", "/var/cache/odoo-pulumi")) / "testhost" / f"instance{SUFFIX}"
GUEST_IP = f"10.213.{SLOT}.2"
REPO_URL = f"http://10.213.{SLOT}.1:8213"
BRIDGE = f"odoo-th-br{SLOT}"
READY_LINE = re.compile(r"host=(\S+) port=(\d+) user=(\S+) key=(\S+)")


def script(name: str, *args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "testbed" / "scripts" / name), *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@dataclass(frozen=True)
class Host:
    host: str
    port: int
    user: str
    key: str

    @property
    def known_hosts(self) -> Path:
        return Path(self.key).parent / "known_hosts"

    def ssh(self, command: str, timeout: int = 60, known_hosts: Path | None = None) -> subprocess.CompletedProcess:
        """Run a command over SSH, checking the host key against the pinned one."""
        argv = ["ssh", "-i", self.key, "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={known_hosts or self.known_hosts}",
                f"{self.user}@{self.host}", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def out(self, command: str, timeout: int = 60) -> str:
        """stdout of a command that must succeed."""
        r = self.ssh(command, timeout=timeout)
        assert r.returncode == 0, f"{command!r} failed ({r.returncode}): {r.stderr[-2000:]}"
        return r.stdout.strip()


def tcp_open(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_ready(host: Host, timeout: int = 180) -> str:
    """Poll until systemd on the host says the boot is over; return its state."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        r = host.ssh("systemctl is-system-running --wait", timeout=30)
        state = r.stdout.strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(1)
    raise AssertionError(f"test host not ready after {timeout}s (last state {state!r})")


@pytest.fixture(scope="module")
def host():
    """A fresh test host for this module, removed afterwards whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("the test host needs root (systemd-nspawn, veth, mounts)")
    up = script("testhost-up", timeout=1800)
    assert up.returncode == 0, f"testbed/scripts/testhost-up failed:\n{up.stderr[-3000:]}"
    m = READY_LINE.fullmatch(up.stdout.strip().splitlines()[-1])
    assert m, f"unexpected last line of testhost-up: {up.stdout!r}"
    try:
        yield Host(m[1], int(m[2]), m[3], m[4])
    finally:
        script("testhost-down", timeout=300)


@pytest.fixture(scope="module")
def installed(host):
    """What provisioning does first: apt-get update and install, from the local repository."""
    r = host.ssh("sudo -n apt-get update -q && sudo -n DEBIAN_FRONTEND=noninteractive "
                 "apt-get install -y -q postgresql nginx ufw python3-venv", timeout=900)
    assert r.returncode == 0, f"apt-get failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
    return r.stdout


def test_ready_line_describes_the_host(host):
    """The e2e tests and the demo read the address, user and key from this line."""
    assert (host.host, host.port, host.user) == (GUEST_IP, 22, "ubuntu")
    assert Path(host.key).is_file() and Path(host.key).stat().st_mode & 0o077 == 0
    assert not Path(host.key).resolve().is_relative_to(ROOT), "the test key must live in the cache, not the repo"


def test_systemd_is_pid_1_and_the_boot_is_clean(host):
    """Provisioning installs systemd units: the host must run a real systemd, with nothing failed."""
    assert host.out("ps -o comm= -p 1") == "systemd"
    assert host.out("systemctl is-system-running") == "running"
    assert host.out("systemctl --failed --no-legend --plain") == ""
    assert host.out(". /etc/os-release && echo $VERSION_CODENAME") == "trixie"


def test_ubuntu_is_a_passwordless_sudoer(host):
    """Like Ubuntu's cloud images: provisioning runs `sudo -n` as `ubuntu`."""
    assert host.out("id -un") == "ubuntu"
    assert host.out("sudo -n id -u") == "0"


def test_host_key_is_pinned(host, tmp_path):
    """The tests check whom they talk to: a wrong known_hosts must be refused."""
    assert host.known_hosts.read_text().startswith("10.213.0.2 ssh-ed25519 ")
    assert host.out("echo checked") == "checked"
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    assert host.ssh("true", known_hosts=empty).returncode != 0


def test_apt_sees_only_the_local_repository(host):
    """Without internet the provisioning's apt must be served by the host, and only by it."""
    sources = host.out("cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list "
                       "/etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v '^#' || true")
    assert sources.splitlines() == [f"deb [trusted=yes] {REPO_URL} ./"]
    assert "default" not in host.out("ip route"), "the test host must not route beyond the veth"


def test_the_served_repository_is_kept_by_other_builds(host):
    """testhost-build prunes every repository no server's working directory points at: the
    one this host's apt uses must be that directory, or another slot's build deletes it
    (seen: apt-get update 404 in the middle of a `pulumi up`)."""
    pid = (RUN / "http.pid").read_text().strip()
    cache = INSTANCE.parent
    assert Path(f"/proc/{pid}/cwd").resolve() == (cache / "repo").resolve()


def test_postgresql_and_nginx_install_and_run(host, installed):
    """The real packages install from the local repository and run under systemd."""
    assert f"{REPO_URL} ./" in host.out("apt-cache policy nginx")
    assert host.out("sudo -n -u postgres psql -tAc 'select 1'") == "1"
    assert host.out("systemctl is-active nginx") == "active"
    clusters = host.out("systemctl list-units 'postgresql@*' --state=active --no-legend --plain")
    assert re.search(r"postgresql@\d+-main\.service", clusters), clusters
    status = host.out("python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1/').status)\"")
    assert status == "200"


def test_python_venv_works(host, installed):
    """Odoo's virtualenv is made with `python3 -m venv`."""
    assert host.out("python3 -m venv /tmp/venv && /tmp/venv/bin/python -c "
                    "'import sys; print(sys.prefix != sys.base_prefix)'") == "True"


def test_systemd_analyze_security_scores_units(host, installed):
    """The hardening of odoo.service is checked with systemd-analyze security on this host."""
    assert "Overall exposure level for nginx.service" in host.out("systemd-analyze security nginx.service --no-pager")


def test_ufw_filters_inside_the_container(host, installed):
    """Provisioning enables ufw: it must really drop what it does not allow, and keep SSH."""
    assert tcp_open(host.host, 80), "nginx must answer before the firewall is on"
    host.out("sudo -n ufw allow OpenSSH && sudo -n ufw --force enable")
    assert "Status: active" in host.out("sudo -n ufw status")
    assert host.out("echo still-here") == "still-here"
    assert not tcp_open(host.host, 80), "ufw is enabled but port 80 is still reachable"
    host.out("sudo -n ufw allow 80/tcp")
    assert tcp_open(host.host, 80)


def test_stop_and_start_keep_the_disk(host, installed):
    """The e2e test stops the host while `pulumi up` waits: what was written must survive."""
    token = secrets.token_hex(8)
    host.out(f"echo {token} > ~/marker && sync")
    r = script("testhost-stop", timeout=120)
    assert r.returncode == 0, r.stderr
    # The bridge stays while the host is stopped, so this fails here, on this machine.
    assert not tcp_open(host.host, 22, timeout=2), "the host still answers after testhost-stop"
    started = time.monotonic()
    r = script("testhost-start", "--no-wait", timeout=60)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started < 15, "testhost-start --no-wait must not wait for the boot"
    assert wait_ready(host) == "running"
    assert host.out("cat ~/marker") == token
    assert host.out("systemctl is-active nginx ufw").split() == ["active", "active"]
    assert tcp_open(host.host, 80), "the firewall rules must survive the restart"


# A pure-Python package and one that compiles for the test host's Python (no cp313 wheel
# of MarkupSafe 2.1.5 on PyPI), the way Odoo's lxml==5.2.1 and psycopg2 do.
TINY_REQUIREMENTS = """\
six==1.16.0
MarkupSafe==2.1.5 ; python_version >= '3.12'
MarkupSafe==2.0.1 ; python_version < '3.12'
"""


def test_wheels_built_here_install_on_the_offline_host(host, installed, tmp_path):
    """testbed/scripts/build-wheels builds, for the test host's Python, the wheels a requirements file
    needs and serves them on the bridge: pip on the host (no internet) installs from there,
    honouring the environment markers, and the compiled extension loads."""
    req = tmp_path / "requirements.txt"
    req.write_text(TINY_REQUIREMENTS)
    built = script("build-wheels", str(req), timeout=900)
    assert built.returncode == 0, f"build-wheels failed:\n{built.stderr[-3000:]}"
    url = built.stdout.strip().splitlines()[-1].removeprefix("index=")
    assert re.fullmatch(rf"http://10\.213\.{SLOT}\.1:8214/[0-9a-f]{{16}}/simple/", url), url
    again = script("build-wheels", str(req), timeout=60)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == f"index={url}", "a current build is reused"
    host.out(f"cat > /tmp/req.txt <<'EOF'\n{TINY_REQUIREMENTS}EOF")
    out = host.out("python3 -m venv /tmp/wheels-venv && /tmp/wheels-venv/bin/pip install -q "
                   f"--index-url {url} --trusted-host 10.213.{SLOT}.1 -r /tmp/req.txt && "
                   "/tmp/wheels-venv/bin/python -c 'import six, markupsafe, markupsafe._speedups as s; "
                   "print(six.__version__, markupsafe.__version__, s.__file__)'", timeout=300)
    six_version, markupsafe_version, speedups = out.split()
    assert (six_version, markupsafe_version) == ("1.16.0", "2.1.5")
    assert speedups.endswith(".so"), "the C extension was compiled for the host's Python"
    # Only the bridge: the index is not served on the machine's other addresses.
    assert not tcp_open("127.0.0.1", 8214)


def test_down_leaves_nothing_behind(host):
    """A test run must not leave a container, a server, a bridge, a veth or a mount behind."""
    pids = [int((RUN / f).read_text()) for f in ("nspawn.pid", "leader.pid", "http.pid", "wheels.pid")]
    veth = (RUN / "veth").read_text().strip()
    r = script("testhost-down", timeout=300)
    assert r.returncode == 0, r.stderr
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} survived testhost-down"
    assert subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode != 0
    assert subprocess.run(["mountpoint", "-q", str(INSTANCE / "merged")]).returncode != 0
    assert subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0
    assert not INSTANCE.exists()
    # No connection to 10.213.0.2 from here on: without the bridge it would leave the machine.
    again = script("testhost-down", timeout=60)
    assert again.returncode == 0, "testhost-down must be safe to call when nothing runs"
