"""The table of bad settings (tests/bad_settings.py) through the real engine's `pulumi
preview`: the engine built from Go modules, the `local` stack prepared by
testbed/scripts/local-stack, each case written into the stack file as an operator would.

Nothing is contacted: a preview of target host runs no command. Each case must stop
before any resource (only the stack itself is listed), with one line naming the key,
the value (cut) and what is allowed, and no Python traceback.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.bad_settings import CASES, apply_to_stack_text, check_message
from tests.e2e.test_pulumi_up import parse_exports

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
# The engine checks declared types itself before the program runs: its own message
# names the key (not the value), and no resource is ever registered.
ENGINE_TYPE_CHECKED = {"firewall-yes": ("firewall", "boolean"), "firewall-on": ("firewall", "boolean"),
                       "users-word": ("users", "integer")}


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def stack():
    work = Path(tempfile.mkdtemp(prefix="odoo-pulumi-bad-settings-"))
    try:
        r = sh([str(ROOT / "testbed/scripts/engine-env")], env={**os.environ, "PULUMI_HOME": str(work / "home")},
               timeout=3000)
        assert r.returncode == 0, r.stderr
        env = parse_exports(r.stdout, {**os.environ, "PULUMI_HOME": str(work / "home")})
        key = work / "id_ed25519"
        assert sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)]).returncode == 0
        archive = work / "odoo_19.0.tar.gz"
        archive.write_bytes(b"a stand-in: a preview never uploads it")
        slot = os.environ.get("ODOO_PULUMI_TESTHOST_SLOT", "0")
        r = sh([str(ROOT / "testbed/scripts/local-stack"), str(work), f"host=10.213.{slot}.2", "port=22", "user=ubuntu",
                f"key={key}", f"archive={archive}"], env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        env = parse_exports((work / "env").read_text(), env)
        project = work / "project"
        ok = sh(["pulumi", "preview", "--stack", "local", "--non-interactive"], cwd=project, env=env, timeout=600)
        assert ok.returncode == 0, "the table's base stack must preview cleanly:\n" + ok.stdout[-3000:] + ok.stderr
        yield project, env
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_setting_stops_the_engine_preview(stack, case):
    project, env = stack
    path = project / "stacks" / "Pulumi.local.yaml"
    original = path.read_text()
    try:
        path.write_text(apply_to_stack_text(case, original))
        for k, v in case.secret.items():
            r = sh(["pulumi", "config", "set", "--secret", "--stack", "local", k], input=v, cwd=project, env=env)
            assert r.returncode == 0, r.stderr
        r = sh(["pulumi", "preview", "--stack", "local", "--non-interactive"], cwd=project, env=env, timeout=600)
    finally:
        path.write_text(original)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-3000:]
    assert "command:remote" not in out and "odoo:remote:Provisioning" not in out, "resources registered:\n" + out
    if case.id in ENGINE_TYPE_CHECKED:
        key, kind = ENGINE_TYPE_CHECKED[case.id]
        assert f"configuration key '{key}' must be of type '{kind}'" in out, out
        assert "Traceback" not in out
        return
    # The engine masks every occurrence of a secret's value in what it prints: a password
    # "admin" turns "adminPassword" into "[secret]Password". Put the name back to read it.
    for value in case.secret.values():
        if value:
            out = out.replace("[secret]", value)
    check_message(case, out)
