"""The stack lint (`make lint-stacks`) and the policy pack refuse what the program used to
refuse through Pulumi's private CONFIG: a key Pulumi.yaml does not declare, a secret in
plain text; the lint also a value its key does not allow. Each problem names the file,
the key and what is allowed, and a secret's value is never shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from odoo_pulumi.settings import ROOT, lint_config, lint_stack_file

sys.path.insert(0, str(ROOT / "policy"))
import odoo_policies as P  # noqa: E402

LINT = ROOT / "scripts" / "lint-stacks"
PLAIN = "Plain-Text-Password-0123"
BAD = f"""config:
  aws:region: eu-west-1
  odoo-pulumi:user: 15
  odoo-pulumi:adminPassword: {PLAIN}
  odoo-pulumi:sshPrivateKey:
    secure: AAABAKvTm0WBhd0n
  odoo-pulumi:users: 015
  odoo-pulumi:port: 0
  firewall: true
"""


def lint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), *map(str, files)], capture_output=True, text=True, timeout=60)


def test_the_real_stack_files_are_clean():
    """Every shipped stack file passes: the lint runs over stacks/*.yaml by default."""
    stacks = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
    assert stacks
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "" and f"{len(stacks)} file(s), 0 problem(s)" in result.stderr


def test_the_test_beds_local_stack_is_clean():
    """testbed/Pulumi.local.yaml (not in stacks/, so not in the default run) passes too."""
    result = lint(ROOT / "testbed" / "Pulumi.local.yaml")
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_a_bad_stack_file_fails_naming_file_key_and_what_is_allowed(tmp_path):
    """Unknown key, plain secret, ambiguous number, value out of range, missing namespace:
    one line each, exit 1; the plain password itself appears nowhere."""
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(BAD)
    result = lint(bad, ROOT / "stacks" / "Pulumi.small.yaml")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert all(line.startswith(f"{bad}: ") for line in lines), lines  # the clean file adds nothing
    by_key = {line.split(": ")[1]: line for line in lines}
    assert set(by_key) == {"odoo-pulumi:user", "odoo-pulumi:adminPassword", "odoo-pulumi:users",
                           "odoo-pulumi:port", "firewall"}
    assert "did you mean users?" in by_key["odoo-pulumi:user"]
    assert "must be stored as a secret, not in plain text: pulumi config set --secret adminPassword" \
        in by_key["odoo-pulumi:adminPassword"]
    assert "plain digits" in by_key["odoo-pulumi:users"] and "allowed 1..65535" in by_key["odoo-pulumi:port"]
    assert "write odoo-pulumi:firewall" in by_key["firewall"]
    assert PLAIN not in result.stdout + result.stderr
    assert "2 file(s), 5 problem(s)" in result.stderr


def test_a_file_that_is_not_yaml_is_one_problem(tmp_path):
    """A broken file is reported by name, not as a traceback."""
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text("config: [unclosed\n")
    problems = lint_stack_file(broken)
    assert [p.kind for p in problems] == ["yaml"] and str(broken) in str(problems[0])


def test_engine_config_judges_no_secret():
    """The engine hands decrypted strings: a secret there is neither judged nor shown."""
    config = {"odoo-pulumi:adminPassword": PLAIN, "odoo-pulumi:users": "15", "odoo-pulumi:adminCidrs": '["10.0.0.1/32"]'}
    assert lint_config(config, "stack config", secrets_marked=False) == []
    assert [p.kind for p in lint_config(config, "f")] == ["plain-secret"]


# --- the policy pack's stack-config check ------------------------------------------------------------


class Violations(list):
    def __call__(self, message: str, urn=None) -> None:
        self.append(message)


def run_policy(config: dict, stack: str = "") -> Violations:
    found = Violations()
    env = {"PULUMI_CONFIG": json.dumps(config), "PULUMI_STACK": stack}
    P.validate_stack_config(None, found, environ=env)
    return found


def test_policy_refuses_an_unknown_key_and_a_bad_value():
    """What the engine hands the pack: a misspelt key and a value its key refuses."""
    v = run_policy({"aws:region": "eu-west-1", "odoo-pulumi:usres": "15", "odoo-pulumi:port": "0"})
    assert len(v) == 2
    assert "odoo-pulumi:usres: unknown setting; did you mean users?" in v[0]
    assert "setting port=0 is invalid: allowed 1..65535" in v[1]


def test_policy_refuses_a_plain_secret_in_the_stack_file(tmp_path, monkeypatch):
    """The engine does not tell a Python pack which keys were secret; the stack file does."""
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.t.yaml").write_text(BAD)
    monkeypatch.setattr(P, "ROOT", tmp_path)
    v = run_policy({"odoo-pulumi:adminPassword": PLAIN, "odoo-pulumi:users": "15"}, stack="org/t")
    assert v == [f"{tmp_path / 'stacks' / 'Pulumi.t.yaml'}: odoo-pulumi:adminPassword: setting adminPassword "
                 f"must be stored as a secret, not in plain text: pulumi config set --secret adminPassword"]


@pytest.mark.parametrize("stack", ["small", "large"])
def test_policy_passes_the_real_stacks(stack):
    """The shipped stacks, handed over as the engine does (strings, arrays as JSON), pass."""
    raw = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    config = {k: json.dumps(v) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v)
              for k, v in raw.items()}
    assert run_policy(config, stack=stack) == []
