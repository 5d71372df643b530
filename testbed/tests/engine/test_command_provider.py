"""odoo-pulumi's stand-in command provider, driven by the real engine against a real sshd.

The provider (testbed/command-provider) stands in for pulumi-command where the real one cannot
be had, so what the project relies on is checked end to end: the engine from
`testbed/scripts/engine-env` (with a fresh PULUMI_HOME and plugin downloads off, so that it installs
the stand-in) runs a throwaway Python program (the repo's .venv, with the
pulumi-command SDK) whose `local.Command`, `remote.Command` and `remote.CopyToRemote` talk
to a throwaway sshd on 127.0.0.1 (own host key, own authorized key, started and stopped
here). The tests run in file order on one stack: each changes the program's config and
checks what the provider did on the "remote" side (the same file system, over SSH).
Needs root (sshd) and installs openssh-server when it is missing (services are not
started: Debian's policy-rc.d). Bounded: every pulumi command has a timeout.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".venv"
SSHD = Path("/usr/sbin/sshd")
STEP_TIMEOUT = 240  # seconds for one pulumi command

PROGRAM = '''\
"""Throwaway program for testbed/tests/engine/test_command_provider.py."""
from pathlib import Path

import pulumi
from pulumi_command import local, remote

cfg = pulumi.Config()
d = cfg.require("dir")
gen = cfg.require("gen")
trig = cfg.require("trigger")
conn = remote.ConnectionArgs(
    host="127.0.0.1",
    port=cfg.require_int("port"),
    user="root",
    private_key=pulumi.Output.secret(Path(cfg.require("keyFile")).read_text()),
    dial_error_limit=cfg.require_int("dialErrorLimit"),
    per_dial_timeout=5,
)
loc = local.Command(
    "loc",
    create=f"echo local-{gen}",
    delete=f"echo local-deleted >> {d}/local-deletes",
)
main = remote.Command(
    "main",
    connection=conn,
    create=(f"echo create-{gen}-{trig} >> {d}/runs; cat > {d}/stdin-got; "
            f"echo VISIBLE-OUT-{gen}; echo VISIBLE-ERR-{gen} >&2"),
    delete=f"echo deleted-{trig} >> {d}/deletes",
    stdin=pulumi.Output.secret(f"TOPSECRET-{gen}\\n"),
    triggers=[trig],
    add_previous_output_in_env=False,
)
quiet = remote.Command(  # addPreviousOutputInEnv left at its default (true)
    "quiet",
    connection=conn,
    create=f"echo QUIET-OUT-{gen}; echo QUIET-ERR-{gen} >&2",
    logging=remote.Logging.NONE,
)
envok = remote.Command(
    "envok",
    connection=conn,
    create='echo "env=$LC_ODOO_TEST"',
    environment={"LC_ODOO_TEST": f"e{gen}"},
    add_previous_output_in_env=False,
)
if cfg.get_bool("badEnv"):
    remote.Command("badenv", connection=conn, create="true", environment={"ODOO_CUSTOM": "x"},
                   add_previous_output_in_env=False)
copy = remote.CopyToRemote(
    "copy",
    connection=conn,
    source=pulumi.FileAsset(f"{d}/src.txt"),
    remote_path=f"{d}/copied/dst.txt",
)
pulumi.export("local", loc.stdout)
pulumi.export("remote", main.stdout)
pulumi.export("envok", envok.stdout)
pulumi.export("quietOut", pulumi.Output.secret(quiet.stdout))  # not printed by up
'''


def free_port(preferred: int = 2222) -> int:
    """2222 when it is free on loopback, else any free port (another run may hold it)."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def ensure_sshd() -> None:
    """Install openssh-server when sshd is missing (root only), without starting its service."""
    if SSHD.exists():
        return
    if os.geteuid() != 0:
        pytest.skip("needs /usr/sbin/sshd (openssh-server) and root to install it")
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    if own_policy:  # never let the package start an sshd on port 22
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openssh-server"],
                       check=True, env=env, timeout=600)
    finally:
        if own_policy:
            policy.unlink()


class Sshd:
    """A throwaway sshd on 127.0.0.1 that only accepts the test's key for root."""

    def __init__(self, work: Path, port: int):
        self.work, self.port = work, port
        self.proc: subprocess.Popen | None = None
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "hostkey")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "client")], check=True)
        shutil.copy(work / "client.pub", work / "authorized_keys")
        (work / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work}/hostkey\n"
            f"PidFile {work}/sshd.pid\nAuthorizedKeysFile {work}/authorized_keys\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "AcceptEnv LANG LC_*\nSubsystem sftp internal-sftp\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory

    def start(self) -> None:
        with open(self.work / "sshd.log", "ab") as log:
            self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(self.work / "sshd_config")],
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.work / 'sshd.log').read_text()}")
            time.sleep(0.05)
        raise RuntimeError("sshd did not listen within 10 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def engine_env(pulumi_home: Path) -> dict[str, str]:
    """The environment `eval "$(testbed/scripts/engine-env)"` gives, with our own PULUMI_HOME and no
    plugin download: the stand-in gets installed there."""
    base = dict(os.environ, PULUMI_HOME=str(pulumi_home), PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true")
    out = subprocess.run(["bash", "-c", 'eval "$(testbed/scripts/engine-env)" && env -0'], cwd=ROOT, env=base,
                         capture_output=True, check=True, timeout=1800).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


class Stack:
    """The throwaway project and its stack, driven with the built engine."""

    def __init__(self, work: Path, env: dict[str, str], port: int):
        self.work, self.port = work, port
        self.proj = work / "proj"
        self.proj.mkdir()
        self.data = work / "data"  # what the commands write ("remote" side)
        self.data.mkdir()
        (self.data / "src.txt").write_text("copy v1\n")
        (self.proj / "Pulumi.yaml").write_text(
            "name: cmdprov-e2e\nruntime:\n  name: python\n  options:\n"
            f"    toolchain: pip\n    virtualenv: {VENV}\n")
        (self.proj / "__main__.py").write_text(PROGRAM)
        (work / "state").mkdir()
        self.env = dict(env, PULUMI_CONFIG_PASSPHRASE="x", PULUMI_BACKEND_URL=f"file://{work}/state")
        self.pulumi("stack", "init", "e2e")
        self.config(dir=str(self.data), gen="1", trigger="t1", port=str(port),
                    keyFile=str(work / "client"), dialErrorLimit="10")

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=self.proj, env=self.env,
                              capture_output=True, text=True, timeout=STEP_TIMEOUT)
        if check and proc.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def config(self, **values: str) -> None:
        for k, v in values.items():
            self.pulumi("config", "set", k, v)

    def up(self, check: bool = True) -> subprocess.CompletedProcess:
        return self.pulumi("up", "--yes", "--skip-preview", check=check)

    def read(self, name: str) -> str:
        p = self.data / name
        return p.read_text() if p.exists() else ""


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """Engine, sshd and a first `pulumi up`; everything is torn down at the end."""
    if not VENV.joinpath("bin", "python").exists():
        pytest.skip("needs the project's .venv (make venv)")
    if os.geteuid() != 0:
        pytest.skip("needs root: the throwaway sshd logs in as root")
    ensure_sshd()
    work = tmp_path_factory.mktemp("cmdprov")
    env = engine_env(work / "pulumi-home")
    port = free_port()
    sshd = Sshd(work, port)
    sshd.start()
    stack = Stack(work, env, port)
    first = stack.up()
    try:
        yield stack, sshd, first
    finally:
        if sshd.proc is None:  # a test stopped it: destroy needs it for the deletes
            sshd.start()
        stack.pulumi("destroy", "--yes", check=False)
        sshd.stop()


def test_go_unit_tests():
    """The provider's Go unit tests (diff/replace, dial retry timing, logging) run with the suite."""
    if shutil.which("go") is None:
        pytest.skip("needs the go command (it builds the engine too)")
    cache = Path(os.environ.get("ODOO_PULUMI_CACHE", "/var/cache/odoo-pulumi"))
    env = dict(os.environ, GOTOOLCHAIN="local", GOSUMDB="off", GOFLAGS="-mod=readonly", CGO_ENABLED="0",
               GOMODCACHE=str(cache / "go" / "pkg" / "mod"), GOCACHE=str(cache / "go" / "build-cache"))
    proc = subprocess.run(["go", "test", "-count=1", "./..."], cwd=ROOT / "testbed" / "command-provider",
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok  \todoo-pulumi/testbed/command-provider/remote" in proc.stdout


def test_engine_env_installs_the_plugin(e2e):
    """engine-env must put the stand-in where the engine looks (PULUMI_HOME), marked as its own,
    with no PATH warning."""
    stack, _, first = e2e
    plugin = Path(stack.env["PULUMI_HOME"]) / "plugins" / "resource-command-v1.2.1" / "pulumi-resource-command"
    assert plugin.exists()
    marker = plugin.parent / ".odoo-pulumi-stand-in"
    assert f"sha256={hashlib.sha256(plugin.read_bytes()).hexdigest()}" in marker.read_text()
    assert "from $PATH" not in first.stdout + first.stderr


def test_create_runs_with_stdin_and_logging(e2e):
    """A create runs once with its stdin; logged output appears, logging NONE output does not."""
    stack, _, first = e2e
    assert stack.read("runs") == "create-1-t1\n"
    assert stack.read("stdin-got") == "TOPSECRET-1\n"
    assert (stack.data / "copied" / "dst.txt").read_text() == "copy v1\n"
    out = first.stdout + first.stderr
    assert "VISIBLE-OUT-1" in out and "VISIBLE-ERR-1" in out
    assert "QUIET-OUT-1" not in out and "QUIET-ERR-1" not in out
    # Output lines are ephemeral status lines, as upstream: not repeated in a Diagnostics block.
    assert "Diagnostics:" not in first.stdout, first.stdout
    outputs = stack.pulumi("stack", "output", "--json", "--show-secrets").stdout
    assert '"local": "local-1"' in outputs and '"quietOut": "QUIET-OUT-1"' in outputs
    assert '"envok": "env=e1"' in outputs, "an AcceptEnv variable did not arrive"


def test_preview_and_refresh_change_nothing(e2e):
    """A second preview must be clean (CI runs --expect-no-changes); refresh must run nothing."""
    stack, _, _ = e2e
    stack.pulumi("preview", "--expect-no-changes")
    stack.pulumi("refresh", "--yes")
    stack.pulumi("preview", "--expect-no-changes")
    assert stack.read("runs") == "create-1-t1\n", "preview or refresh ran a command"


def test_secrets_stay_secret_in_state(e2e):
    """Secret stdin and the private key must be ciphertext in the state, never plain."""
    stack, sshd, _ = e2e
    state = stack.pulumi("stack", "export").stdout
    assert "TOPSECRET" not in state
    key_body = (sshd.work / "client").read_text().splitlines()[1]
    assert key_body not in state
    assert "ciphertext" in state


def test_changed_create_updates(e2e):
    """Changing `create` is an update: create runs again, nothing is deleted."""
    stack, _, _ = e2e
    stack.config(gen="2")
    up = stack.up()
    assert stack.read("runs") == "create-1-t1\ncreate-2-t1\n"
    assert stack.read("deletes") == ""
    assert stack.read("stdin-got") == "TOPSECRET-2\n"
    assert re.search(r"~ +\d+ updated", up.stdout), up.stdout
    # The default addPreviousOutputInEnv is refused by this sshd (AcceptEnv LANG LC_*): a
    # warning, not a failure (upstream's behaviour).
    assert "Unable to set 'PULUMI_COMMAND_STDOUT'" in up.stdout + up.stderr


def test_changed_trigger_replaces(e2e):
    """A `triggers` change replaces: the new one is created, then the old one's delete runs."""
    stack, _, _ = e2e
    stack.config(trigger="t2")
    up = stack.up()
    assert stack.read("runs").splitlines()[-1] == "create-2-t2"
    assert stack.read("deletes") == "deleted-t1\n"
    assert re.search(r"\+-\d+ replaced|\d+ replaced", up.stdout), up.stdout


def test_copy_follows_source_content(e2e):
    """CopyToRemote copies again when the source file's content (hash) changes."""
    stack, _, _ = e2e
    (stack.data / "src.txt").write_text("copy v2\n")
    stack.up()
    assert (stack.data / "copied" / "dst.txt").read_text() == "copy v2\n"


def test_refused_port_fails_fast_with_low_dial_limit(e2e):
    """dialErrorLimit 3 against a refused port gives up after 4 dials (~0.5 s of backoff), in
    upstream's words."""
    stack, sshd, _ = e2e
    sshd.stop()
    stack.config(dialErrorLimit="3")
    start = time.monotonic()
    up = stack.up(check=False)
    elapsed = time.monotonic() - start
    assert up.returncode != 0
    out = up.stdout + up.stderr
    assert "connection refused" in out and "after 3 failed attempts" in out, out
    assert elapsed < 60, f"took {elapsed:.0f} s"


def test_high_dial_limit_waits_for_a_late_sshd(e2e):
    """With dialErrorLimit 50 the provider keeps dialing until the server appears (a booting host)."""
    stack, sshd, _ = e2e
    stack.config(dialErrorLimit="50")
    runs_before = stack.read("runs")
    start = time.monotonic()
    up_proc = subprocess.Popen(["pulumi", "up", "--yes", "--skip-preview", "--non-interactive"],
                               cwd=stack.proj, env=stack.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    time.sleep(5)
    sshd.start()
    try:
        out, _ = up_proc.communicate(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        up_proc.kill()
        out, _ = up_proc.communicate()
        pytest.fail(f"pulumi up did not finish within {STEP_TIMEOUT} s:\n{out}")
    assert up_proc.returncode == 0, out
    assert time.monotonic() - start >= 5
    # The connection changed (a new dial limit), so the command ran again, once sshd was up.
    assert stack.read("runs") == runs_before + "create-2-t2\n"


def test_refused_environment_fails_the_command(e2e):
    """An `environment` variable the sshd refuses fails the command (upstream), with advice."""
    stack, _, _ = e2e
    stack.config(badEnv="true")
    up = stack.up(check=False)
    stack.pulumi("config", "rm", "badEnv")
    assert up.returncode != 0
    assert 'could not set environment variable "ODOO_CUSTOM"' in up.stdout + up.stderr
    assert "Unable to set 'ODOO_CUSTOM'" in up.stdout + up.stderr and "AcceptEnv" in up.stdout + up.stderr


def test_destroy_runs_delete(e2e):
    """destroy runs each command's `delete` (the remote one over SSH, the local one here)."""
    stack, _, _ = e2e
    stack.pulumi("destroy", "--yes")
    assert stack.read("deletes").splitlines()[-1] == "deleted-t2"
    assert stack.read("local-deletes") == "local-deleted\n"
