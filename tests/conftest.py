"""Shared test helpers: settings for a stack or a hand-made host config."""

import shutil
import tempfile
from pathlib import Path

import pulumi
import pytest

from odoo_pulumi.settings import ROOT, load_settings, read_stack_file, sizing_for

SECRETS = {"adminPassword", "adminUserPassword", "sshPrivateKey"}
# The test bed's stack: not in stacks/ (production stacks only); testbed/scripts/local-stack
# copies it there in the work directory it prepares.
LOCAL_STACK = ROOT / "testbed" / "Pulumi.local.yaml"
PRODUCTION_STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


@pytest.fixture(autouse=True)
def _sdk_debug_put_back():
    """__main__.py replaces pulumi.log.debug (the SDK's debug lines, see there): every test
    that runs the program leaves the SDK as it found it."""
    debug = pulumi.log.debug
    yield
    pulumi.log.debug = debug


def read_stack(stack: str) -> dict:
    """A stack file's keys as the program reads them: a production stack from stacks/, the
    `local` one from testbed/, placed beside the others as testbed/scripts/local-stack does."""
    if stack != "local":
        return read_stack_file(stack)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "stacks").mkdir()
        shutil.copy(LOCAL_STACK, Path(d) / "stacks" / "Pulumi.local.yaml")
        return read_stack_file("local", root=Path(d))


def stack_settings(stack: str, **over):
    raw = read_stack_file(stack)
    raw.update(over)
    return load_settings(raw, stack, SECRETS)


def host_settings(**over):
    raw = {"users": 15, "target": "host", "host": "10.0.0.5", "adminCidrs": ["10.0.0.1/32"]}
    if str(over.get("firewall", "true")).lower() == "false":
        raw["adminCidrs"] = []
    raw.update(over)
    return load_settings(raw, "test", SECRETS)


@pytest.fixture
def small():
    s = stack_settings("small")
    return s, sizing_for(s)


def assert_shell_clean(path) -> None:
    """A shell script parses (bash -n) and shellcheck finds no warning in it; CI installs
    shellcheck, a developer machine without it gets the parse check alone."""
    import shutil
    import subprocess

    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, f"{path}: {r.stderr}"
    if shutil.which("shellcheck"):
        r = subprocess.run(["shellcheck", "-S", "warning", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, f"{path}:\n{r.stdout}"
