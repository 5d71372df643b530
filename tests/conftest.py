"""Shared test helpers: settings for a stack or a hand-made host config."""

import pytest

from odoo_pulumi.settings import load_settings, read_stack_file, sizing_for

SECRETS = {"adminPassword", "adminUserPassword", "sshPrivateKey"}


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
