"""The Provisioning component under Pulumi mocks: what `pulumi up` would register.

No engine and no server: the mock monitor records every registration (type, inputs as
sent over the wire, dependencies, secret outputs). The tests check the resource graph
for both targets, that secrets stay secret and out of command strings, the logging of
each step, and that a users change reaches only odoo-config and health.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor

from odoo_pulumi import steps
from odoo_pulumi import backup
from odoo_pulumi.render import server_files as render_server_files


def server_files(s, z):
    """Every file the server gets: render's and the backup's (the stack bucket on aws)."""
    aws = s.target == "aws"
    return {**render_server_files(s, z),
            **backup.server_files(s, bucket="odoo-backups-test-0a1b2c3" if aws else None,
                                  region="eu-west-1" if aws else None)}


def backup_destination(s):
    """Where those backup files send the backups (what the program passes on aws)."""
    return backup.destination(s, "odoo-backups-test-0a1b2c3", "eu-west-1") if s.target == "aws" else None
from odoo_pulumi.settings import sizing_for
from tests.conftest import host_settings, stack_settings

PROJECT = "odoo-pulumi"
ADMIN = "mock admin password"
USER_PASSWORD = "administrator user password"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nmock-key-material\n-----END OPENSSH PRIVATE KEY-----\n"
COMMAND = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
COMPONENT = "odoo:remote:Provisioning"
SECRET_SIG = "4dabf18193072939515e22adb298388d"
VOLUME_ID = "vol-0123456789abcdef0"
EIP = "198.51.100.77"


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    parent: str
    dependencies: list[str]
    secret_outputs: list[str]
    secret_inputs: set[str]
    inputs: dict[str, Any]
    replace_on_changes: list[str]


def _secret_keys(struct) -> set[str]:
    """Top-level input names sent as secrets (wrapped in Pulumi's secret signature)."""
    keys = set()
    for key, value in struct.fields.items():
        s = value.struct_value if value.HasField("struct_value") else None
        if s is not None and SECRET_SIG in s.fields:
            keys.add(key)
    return keys


class Recorder(pulumi.runtime.Mocks):
    def __init__(self):
        self.inputs: dict[str, dict] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.inputs[args.name] = dict(args.inputs)
        state = dict(args.inputs)
        if args.typ == COMMAND:
            step = args.name.split("-", 1)[1]
            state["stdout"] = f"odoo-pulumi: {step}: all good\nodoo-pulumi: {step}: changed=0"
            state["stderr"] = ""
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        raise AssertionError(f"unexpected invoke {args.token}")


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: Recorder):
        super().__init__(mocks)
        self.requests: dict[str, dict] = {}

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        self.requests[request.name] = {
            "type": request.type, "urn": response.urn, "parent": request.parent,
            "dependencies": list(request.dependencies),
            "secret_outputs": list(request.additionalSecretOutputs),
            "secret_inputs": _secret_keys(request.object),
            "replace_on_changes": list(request.replaceOnChanges),
        }
        return response


def build(settings, *, admin=ADMIN, server_id=None, name="odoo") -> dict[str, Registered]:
    """Run Provisioning once under mocks (preview=False so every apply runs)."""
    from components.provisioning import Provisioning, ProvisioningArgs

    sizing = sizing_for(settings)
    mocks = Recorder()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=settings.stack, preview=False, monitor=monitor)
    out: dict[str, Any] = {}

    @pulumi.runtime.test
    def run():
        # As the program passes them: every file plain (odoo.conf with the slot the
        # server fills), the passwords as secret Outputs.
        files = server_files(settings, sizing)
        aws = settings.target == "aws"
        prov = Provisioning(name, ProvisioningArgs(
            host=EIP if aws else settings.host, settings=settings, files=files,
            private_key=pulumi.Output.secret(PRIVATE_KEY),
            admin_password=pulumi.Output.secret(admin),
            admin_user_password=pulumi.Output.secret(USER_PASSWORD),
            data_volume_id=VOLUME_ID if aws else None, server_id=server_id,
            backup_destination=backup_destination(settings),
        ))
        return prov.health.apply(lambda h: out.update(health=h))

    run()
    regs = {
        n: Registered(r["type"], n, r["urn"], r["parent"], r["dependencies"], r["secret_outputs"],
                      r["secret_inputs"], mocks.inputs.get(n, {}), r["replace_on_changes"])
        for n, r in monitor.requests.items() if r["type"] != "pulumi:pulumi:Stack"
    }
    regs["__health__"] = out.get("health")  # type: ignore[assignment]
    return regs


def commands(regs) -> dict[str, Registered]:
    return {r.name.split("-", 1)[1]: r for r in regs.values() if isinstance(r, Registered) and r.type == COMMAND}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    p = tmp_path_factory.mktemp("arc") / "odoo-19.0.tar.gz"
    p.write_bytes(b"fake archive bytes")
    return str(p)


@pytest.fixture(scope="module")
def host_build(archive):
    return build(host_settings(odooSource="archive", odooArchive=archive, host="192.0.2.10"))


@pytest.fixture(scope="module")
def aws_build():
    return build(stack_settings("small"), server_id="i-0123456789abcdef0")


# --- the graph ---------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["host", "aws"])
def test_one_command_per_step_under_the_component(which, host_build, aws_build):
    """Every planned step is one remote.Command, child of the odoo:remote:Provisioning component."""
    regs = host_build if which == "host" else aws_build
    settings = host_settings() if which == "host" else stack_settings("small")
    component = next(r for r in regs.values() if isinstance(r, Registered) and r.type == COMPONENT)
    cmds = commands(regs)
    assert sorted(cmds) == sorted(st.name for st in steps.plan(settings))
    assert all(c.parent == component.urn for c in cmds.values())


@pytest.mark.parametrize("which", ["host", "aws"])
def test_depends_on_follows_the_plan(which, host_build, aws_build, archive):
    """Each Command depends on exactly the Commands of its plan dependencies (plus the upload)."""
    regs = host_build if which == "host" else aws_build
    settings = (host_settings(odooSource="archive", odooArchive=archive) if which == "host"
                else stack_settings("small"))
    cmds = commands(regs)
    urn_to_step = {c.urn: n for n, c in cmds.items()}
    copies = {r.name: r.urn for r in regs.values() if isinstance(r, Registered) and r.type == COPY}
    uploads = {urn: steps.programs(settings)[name.removeprefix("odoo-upload-")][1]
               for name, urn in copies.items() if name.startswith("odoo-upload-")}
    assert sorted(uploads.values()) == ["backup", "backup", "health"]
    for step in steps.plan(settings):
        deps = cmds[step.name].dependencies
        assert {urn_to_step[u] for u in deps if u in urn_to_step} == set(step.depends_on), step.name
        # Each step waits for the uploads it installs, and for no other.
        assert {u for u in deps if u in uploads} == {u for u, user in uploads.items() if user == step.name}
        if step.name == "odoo-install" and settings.odoo_source == "archive":
            assert copies["odoo-odoo-archive"] in deps
    if which == "aws":
        assert "data-volume" in cmds


def test_archive_uploaded_after_wait_to_its_staging_path(host_build, archive):
    """The archive goes up once SSH answers, to the path the install step checks."""
    cmds = commands(host_build)
    copy = next(r for r in host_build.values() if isinstance(r, Registered) and r.name == "odoo-odoo-archive")
    assert copy.type == COPY and cmds["wait"].urn in copy.dependencies
    sha = steps.file_sha256(archive)
    s = host_settings(odooSource="archive", odooArchive=archive)
    assert copy.inputs["remotePath"] == steps.archive_staging_path(s, sha)
    assert steps.archive_staging_path(s, sha) in cmds["odoo-install"].inputs["stdin"]


def test_aws_build_has_no_upload_for_deb(aws_build):
    """The deb source downloads from Odoo's repository on the server: no archive to upload
    (only the shipped programs)."""
    assert sorted(r.name for r in aws_build.values() if isinstance(r, Registered) and r.type == COPY) == [
        "odoo-upload-odoo-acceptance", "odoo-upload-odoo-backup", "odoo-upload-odoo-restore"]


def _text(value) -> str:
    """A script as sent, whether plain or in the secret wrapper."""
    return value["value"] if isinstance(value, dict) else value


@pytest.mark.parametrize("which", ["host", "aws"])
def test_programs_uploaded_as_file_assets_never_inside_a_script(which, host_build, aws_build):
    """odoo-acceptance, odoo-backup and odoo-restore go up once, each as a FileAsset of its
    file in this repository (the engine and the state get its path and hash, never its
    bytes), after wait, to the staging path named by its hash; the step that installs it
    carries that path and hash, and no step's script holds any part of a program."""
    regs = host_build if which == "host" else aws_build
    cmds = commands(regs)
    settings = host_settings() if which == "host" else stack_settings("small")
    for key, (program, user) in steps.programs(settings).items():
        copy = next(r for r in regs.values() if isinstance(r, Registered) and r.name == f"odoo-upload-{key}")
        assert copy.type == COPY and cmds["wait"].urn in copy.dependencies
        source = copy.inputs["source"]
        assert isinstance(source, pulumi.FileAsset) and source.path == program.source
        assert Path(program.source).read_bytes().decode() == program.content
        assert copy.inputs["remotePath"] == program.staged and program.sha256[:16] in program.staged
        assert f"{program.staged} {program.sha256}" in _text(cmds[user].inputs["stdin"])
        encoded = base64.b64encode(program.content.encode()).decode()
        for name, cmd in cmds.items():
            stdin = _text(cmd.inputs["stdin"])
            assert program.content[200:260] not in stdin and encoded[200:260] not in stdin, (key, name)
            if name != user:
                assert program.sha256 not in stdin, (key, name)


# --- secrets ------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["host", "aws"])
def test_no_secret_in_any_command_string(which, host_build, aws_build):
    """create/update/delete strings show in errors and state: neither a password (as text
    or base64) nor the key."""
    regs = host_build if which == "host" else aws_build
    encoded = [base64.b64encode(pw.encode()).decode() for pw in (ADMIN, USER_PASSWORD)]
    for c in commands(regs).values():
        for field in ("create", "update", "delete"):
            text = c.inputs.get(field) or ""
            for secret in (ADMIN, USER_PASSWORD, *encoded, "mock-key-material"):
                assert secret not in text, f"{c.name}.{field}"


@pytest.mark.parametrize("which", ["host", "aws"])
def test_secret_steps_are_secret_and_silent(which, host_build, aws_build):
    """odoo-config carries odoo.conf: secret stdin and outputs; its progress lines (only
    those: its output guard) are logged like every other step's (issue 9)."""
    cmds = commands(host_build if which == "host" else aws_build)
    config = cmds["odoo-config"]
    assert "stdin" in config.secret_inputs
    assert {"stdin", "stdout", "stderr"} <= set(config.secret_outputs)
    stdin = config.inputs["stdin"]
    assert "guard_output" in (stdin["value"] if isinstance(stdin, dict) else stdin)
    assert "stdin" in cmds["health"].secret_inputs
    for name in ("wait", "base", "postgresql", "odoo-install", "odoo-config", "nginx", "health"):
        assert cmds[name].inputs["logging"] == "stdoutAndStderr", name
    for name in ("wait", "base", "postgresql", "odoo-install", "nginx"):
        assert "stdin" not in cmds[name].secret_inputs, f"{name}'s script has no secret: its diff should show"
    for c in cmds.values():
        assert "connection" in c.secret_inputs
        assert c.inputs["addPreviousOutputInEnv"] is False
        assert "environment" not in c.inputs


def test_connection_from_settings(aws_build, host_build):
    """One connection for all steps, with the dial limit of the settings."""
    for regs, s, host in ((aws_build, stack_settings("small"), EIP), (host_build, host_settings(), "192.0.2.10")):
        conns = {repr(c.inputs["connection"]) for c in commands(regs).values()}
        assert len(conns) == 1
        wrapped = next(iter(commands(regs).values())).inputs["connection"]
        assert wrapped[SECRET_SIG]  # the whole connection travels as a secret
        conn = wrapped["value"]
        assert conn["host"] == host and conn["user"] == s.ssh_user and conn["port"] == s.port
        assert conn["dialErrorLimit"] == s.dial_error_limit and conn["privateKey"] == PRIVATE_KEY


def test_no_delete_commands_when_keeping_data(host_build):
    """Default keepDataOnDestroy: pulumi destroy runs nothing on the server."""
    assert all(not c.inputs.get("delete") for c in commands(host_build).values())


def test_delete_commands_when_not_keeping_data():
    """keepDataOnDestroy false: odoo-config drops the database, nginx removes the site."""
    cmds = commands(build(host_settings(keepDataOnDestroy=False)))
    assert "dropdb --if-exists odoo" in cmds["odoo-config"].inputs["delete"]
    assert "sites-enabled/odoo" in cmds["nginx"].inputs["delete"]


# --- change scoping -------------------------------------------------------------------------

def test_users_change_within_capacity_changes_no_step_and_a_limit_only_odoo_config():
    """15 -> 19 users on the same host: it runs every worker its cores allow either way, so
    no step's inputs change; a new time limit changes odoo-config's (and health's, which
    fingerprints every script) and no other step's."""
    a = commands(build(host_settings(users=15)))
    b = commands(build(host_settings(users=19)))
    assert {n for n in a if a[n].inputs != b[n].inputs} == set()
    c = commands(build(host_settings(users=15, limitTimeCpu=900)))
    assert {n for n in a if a[n].inputs != c[n].inputs} == {"odoo-config", "health"}


def test_server_replacement_replaces_every_step(aws_build):
    """With the instance id as trigger, a new instance behind the same EIP is provisioned again."""
    for c in commands(aws_build).values():
        assert c.inputs["triggers"] == ["i-0123456789abcdef0"]
        assert "triggers[*]" in c.replace_on_changes


def test_health_output(host_build):
    """The component's health output is the health step's verdict line."""
    assert host_build["__health__"] == "odoo-pulumi: health: all good"
