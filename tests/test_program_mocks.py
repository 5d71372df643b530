"""The whole program (__main__.py) under Pulumi's mocks, for every stack in stacks/ and the
test bed's `local` one:
settings -> sizing -> components -> exports, with no engine and no cloud. AWS is a fake
(tests/aws_mocks.py); the remote steps are only registered, never run."""

import json
import logging
import runpy

import pulumi
import pytest
from pulumi.runtime.config import set_all_config

from odoo_pulumi.settings import ROOT, read_stack_file, sizing_for, load_settings
from tests.aws_mocks import EIP_ADDRESS, FakeAws, RecordingMonitor, run_main
from tests.conftest import PRODUCTION_STACKS, read_stack

PASSWORD = "Plain-Admin-Password-For-Tests-Only"
USER_PASSWORD = "the administrator user password"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKEKEYMATERIALxyz\n-----END OPENSSH PRIVATE KEY-----\n"
STACKS = [*PRODUCTION_STACKS, "local"]


def as_config(value):
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def run_program(stack, monkeypatch, overrides=None, tmp_path=None, raw=None, secrets=None, mocks=None):
    """Run __main__.py once; return (exports, resources by name, the fake AWS)."""
    raw = dict(read_stack(stack) if raw is None else raw)
    raw.update(overrides or {})
    if raw.get("odooSource") == "archive" and tmp_path is not None:
        archive = tmp_path / "odoo.tar.gz"  # a stand-in file: mocks never upload it
        archive.write_bytes(b"not a real archive")
        raw["odooArchive"] = str(archive)
    config = {f"odoo-pulumi:{k}": as_config(v) for k, v in raw.items()
              if not isinstance(v, dict)}  # secure values of a stack file are replaced below
    config["odoo-pulumi:adminPassword"] = PASSWORD
    config["odoo-pulumi:adminUserPassword"] = USER_PASSWORD
    config["odoo-pulumi:sshPrivateKey"] = PRIVATE_KEY
    config.update({f"odoo-pulumi:{k}": v for k, v in (secrets or {}).items()})
    mocks = FakeAws() if mocks is None else mocks
    monitor = RecordingMonitor(mocks)
    resolved = run_main(stack, config, ["odoo-pulumi:adminPassword", "odoo-pulumi:adminUserPassword",
                                        "odoo-pulumi:sshPrivateKey"], mocks, monitor)
    resources = {n: {"type": monitor.options[n]["type"], "inputs": mocks.inputs.get(n, {})}
                 for n in monitor.options}
    return resolved, resources


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_builds_and_exports(stack, monkeypatch, tmp_path):
    """Each stack file builds the program and exports what an operator needs."""
    exports, resources = run_program(stack, monkeypatch, tmp_path=tmp_path)
    raw = read_stack(stack)
    settings = load_settings(raw, stack, {"adminPassword", "adminUserPassword", "sshPrivateKey"}) if raw.get("odooSource") != "archive" else None
    for key in ("url", "public_ip", "ssh_command", "logs_command", "instance_type", "workers", "sizing", "health",
                "ssh_access"):
        assert key in exports, key
    assert "sshd" in exports["ssh_access"] and "keys only" in exports["ssh_access"]
    assert exports["logs_command"].endswith("sudo journalctl -u odoo -f")
    types = {r["type"] for r in resources.values()}
    assert "odoo:remote:Provisioning" in types and "command:remote:Command" in types
    if raw.get("target", "aws") == "aws":
        assert exports["public_ip"] == EIP_ADDRESS
        assert exports["instance_type"] == sizing_for(settings).instance_type
        assert "aws:ec2/instance:Instance" in types
    else:
        assert not any(t.startswith("aws:") for t in types), "the host target creates no AWS resource"
        assert exports["public_ip"] == raw["host"]


@pytest.mark.parametrize("stack", STACKS)
def test_operator_commands_have_their_exact_form(stack, monkeypatch, tmp_path):
    """url, ssh_command and logs_command, built once for both targets: the domain's
    HTTPS address, else plain HTTP on the server's address; ssh as the stack's user."""
    exports, _ = run_program(stack, monkeypatch, tmp_path=tmp_path)
    raw = read_stack(stack)
    ip = EIP_ADDRESS if raw.get("target", "aws") == "aws" else raw["host"]
    user = raw.get("sshUser", "ubuntu")
    assert exports["url"] == (f"https://{raw['domain']}" if raw.get("domain") else f"http://{ip}")
    assert exports["ssh_command"] == f"ssh -i <your key> {user}@{ip}"
    assert exports["logs_command"] == f"ssh -i <your key> {user}@{ip} sudo journalctl -u odoo -f"


def test_url_without_a_domain_is_http_on_the_ip(monkeypatch):
    """With no domain, the site is plain HTTP on the Elastic IP."""
    exports, _ = run_program("small", monkeypatch, {"domain": "", "letsencryptEmail": ""})
    assert exports["url"] == f"http://{EIP_ADDRESS}"


def test_ssh_command_names_a_port_other_than_22(monkeypatch, tmp_path):
    """A host whose sshd listens elsewhere: the command an operator copies says so."""
    exports, _ = run_program("local", monkeypatch, {"port": 2222}, tmp_path=tmp_path)
    host = read_stack("local")["host"]
    assert exports["ssh_command"] == f"ssh -i <your key> -p 2222 ubuntu@{host}"


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_in_plain_text_in_commands(stack, monkeypatch, tmp_path):
    """The admin passwords (as text or base64) and the private key never appear in a
    command string (a failing command's error repeats its command)."""
    import base64
    _, resources = run_program(stack, monkeypatch, tmp_path=tmp_path)
    secrets = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode(), USER_PASSWORD,
               base64.b64encode(USER_PASSWORD.encode()).decode(), "FAKEKEYMATERIALxyz"]
    for name, r in resources.items():
        if r["type"] != "command:remote:Command":
            continue
        for field in ("create", "update", "delete"):
            text = str(r["inputs"].get(field, ""))
            for secret in secrets:
                assert secret not in text, (name, field)


def test_bad_setting_stops_before_any_resource(monkeypatch):
    """A bad value is one clear error naming the key, and nothing is registered."""
    with pytest.raises(Exception, match=r"setting users=0 is invalid: allowed 1\.\.720"):
        run_program("small", monkeypatch, {"users": 0})


def test_plain_text_secret_is_refused(monkeypatch):
    """An admin password stored without --secret is refused by name."""
    config_secret_keys = ["odoo-pulumi:sshPrivateKey", "odoo-pulumi:adminUserPassword"]  # adminPassword not
    raw = read_stack_file("small")
    config = {f"odoo-pulumi:{k}": as_config(v) for k, v in raw.items()}
    config["odoo-pulumi:adminPassword"] = PASSWORD
    config["odoo-pulumi:adminUserPassword"] = USER_PASSWORD
    config["odoo-pulumi:sshPrivateKey"] = PRIVATE_KEY
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    monkeypatch.chdir(ROOT)
    mocks = FakeAws()
    pulumi.runtime.set_mocks(mocks, project="odoo-pulumi", stack="small", preview=False)
    set_all_config(config, config_secret_keys)

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(ROOT / "__main__.py"))

    try:
        with pytest.raises(Exception, match="adminPassword must be stored as a secret"):
            program()
    finally:
        set_all_config({}, [])
    assert mocks.inputs == {}


def test_unknown_key_in_the_stack_file_is_refused(monkeypatch):
    """pulumi.Config reads declared keys only: a typo in the stack file (`user: 15`)
    would be ignored silently, so the program judges the file too and names the key."""
    stack = "zz-unknown-key-test"
    path = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    text = (ROOT / "stacks" / "Pulumi.small.yaml").read_text() + "  odoo-pulumi:user: 15\n"
    path.write_text(text)
    mocks = FakeAws()
    try:
        with pytest.raises(Exception, match=r"unknown setting\(s\) user in stack .*did you mean users"):
            run_program(stack, monkeypatch, raw={**read_stack_file("small")}, mocks=mocks)
    finally:
        path.unlink()
    assert mocks.inputs == {}


# --- issue 11: the shared table of bad settings, through the whole program --------------------

from tests.bad_settings import CASES, check_message  # noqa: E402
from tests.test_settings import local_raw_for  # noqa: E402


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_settings_stop_the_program_before_any_resource(case, monkeypatch, tmp_path):
    """Each bad setting of the table stops __main__.py with one clear line, before any
    resource is registered (not even the provisioning component)."""
    raw = local_raw_for(case, tmp_path)
    mocks = FakeAws()
    with pytest.raises(Exception) as e:
        run_program("local", monkeypatch, raw=raw, secrets=case.secret, mocks=mocks)
    check_message(case, str(e.value))
    assert mocks.inputs == {}, f"resources registered before the error: {sorted(mocks.inputs)}"


def test_the_sdks_own_debug_lines_are_not_sent_unless_asked(monkeypatch, tmp_path, caplog):
    """Each debug line of the SDK is a blocking call to the engine (four per resource, ~80 ms
    of a no-op preview) that the CLI shows only under --debug: the program does not send
    them; ODOO_PULUMI_SDK_DEBUG=1 does. Its own info line still reaches the engine."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv("ODOO_PULUMI_SDK_DEBUG", raising=False)
    run_program("local", monkeypatch, tmp_path=tmp_path)
    sent = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    # (the stack itself is registered by the SDK before the program runs)
    assert not [line for line in sent if "registering resource" in line and "pulumi:pulumi:Stack" not in line]
    assert any("SSH access after this deployment" in r.getMessage() for r in caplog.records)
    caplog.clear()
    monkeypatch.setenv("ODOO_PULUMI_SDK_DEBUG", "1")
    _, resources = run_program("local", monkeypatch, tmp_path=tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    declared = {n for n, r in resources.items() if r["type"] != "pulumi:pulumi:Stack"}
    assert {n for n in declared if any(f"name={n}," in line for line in lines)} == declared
