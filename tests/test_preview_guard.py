"""Tests for scripts/preview-guard, the check that stops a merge destroying the server.

The script is run as a subprocess, exactly as the GitHub workflows run it, on
previews recorded by hand in tests/fixtures/preview/ (see the README there) and on
variants derived from them here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUARD = ROOT / "scripts" / "preview-guard"
FIXTURES = ROOT / "tests" / "fixtures" / "preview"
OVERRIDE = "ODOO_PULUMI_ALLOW_DESTRUCTIVE"

INSTANCE_URN = "urn:pulumi:small::odoo-pulumi::odoo:aws:Server$aws:ec2/instance:Instance::small-server"
VOLUME_URN = "urn:pulumi:small::odoo-pulumi::odoo:aws:Server$aws:ebs/volume:Volume::small-data"


def run_guard(*args, env_extra=None, stdin=None):
    """Run the guard with a clean environment (no override, not on GitHub)."""
    env = {k: v for k, v in os.environ.items() if k not in (OVERRIDE, "GITHUB_ACTIONS")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, str(GUARD), *map(str, args)],
        capture_output=True, text=True, env=env, input=stdin, timeout=60,
    )


def load(name):
    return json.loads((FIXTURES / name).read_text())


def write(tmp_path, doc, name="preview.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def headers(stdout):
    """The finding lines of a report: `[LEVEL] VERB what: type "name"`."""
    return [line.strip() for line in stdout.splitlines() if line.strip().startswith("[")]


def test_script_is_executable_with_a_python_shebang():
    """The workflows call `scripts/preview-guard FILE` directly, so it must run as a program."""
    assert os.access(GUARD, os.X_OK)
    assert GUARD.read_text().startswith("#!/usr/bin/env python3\n")


def test_in_place_update_and_replaced_commands_pass():
    """An instance_type change is an in-place stop/start, and re-running remote commands
    is how configuration is applied: neither may block a merge."""
    r = run_guard(FIXTURES / "safe-update.json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK: no server or data volume would be replaced or deleted" in r.stdout
    assert "DANGER" not in r.stdout
    # The operator is told the server restarts, but the commands are not mentioned.
    assert headers(r.stdout) == [
        '[note] UPDATE the Odoo server (EC2 instance): aws:ec2/instance:Instance "small-server"'
    ]
    assert "stops and starts the server" in r.stdout
    assert "small-postgresql-configure" not in r.stdout


def test_instance_replaced_by_new_ami_fails_and_explains():
    """The classic accident: a newer AMI is looked up and the server would be rebuilt empty."""
    r = run_guard(FIXTURES / "replace-instance-ami.json")
    assert r.returncode == 1, r.stdout + r.stderr
    hs = headers(r.stdout)
    assert hs[0] == '[DANGER] REPLACE the Odoo server (EC2 instance): aws:ec2/instance:Instance "small-server"'
    assert f"urn: {INSTANCE_URN}" in r.stdout
    assert "because these inputs changed: ami" in r.stdout
    assert "`odoo-pulumi:ami` in the stack file" in r.stdout
    # The attachment follows the instance: reported, but only as a warning.
    assert hs[1].startswith('[warning] REPLACE the data volume attachment')
    assert len(hs) == 2  # the replaced restart command is fine and not listed
    # What to do, including the deliberate override, is spelled out.
    assert f"{OVERRIDE}=1" in r.stdout
    assert "1 destructive change(s)" in r.stdout and "(stack small)" in r.stdout


def test_replacement_shown_as_three_steps_is_reported_once():
    """With --show-replacement-steps one replacement is three steps; any of them means
    the old server is destroyed, and the operator should see one entry, not three."""
    r = run_guard(FIXTURES / "replace-instance-replacement-steps.json")
    assert r.returncode == 1
    assert headers(r.stdout) == [
        '[DANGER] REPLACE the Odoo server (EC2 instance): aws:ec2/instance:Instance "small-server"'
    ]
    assert "steps: create-replacement, replace, delete-replaced" in r.stdout


@pytest.mark.parametrize("kept", ["create-replacement", "delete-replaced", "import-replacement"])
def test_each_replacement_step_kind_alone_fails(tmp_path, kept):
    """Whatever subset of a replacement's steps a preview shows, the guard must fire."""
    doc = load("replace-instance-replacement-steps.json")
    doc["steps"] = [s for s in doc["steps"] if s["op"] == "create-replacement"]
    doc["steps"][0]["op"] = kept
    r = run_guard(write(tmp_path, doc))
    assert r.returncode == 1, r.stdout
    assert "small-server" in r.stdout


def test_data_volume_delete_fails():
    """Removing the volume from the program deletes the database and filestore."""
    r = run_guard(FIXTURES / "delete-data-volume.json")
    assert r.returncode == 1
    hs = headers(r.stdout)
    assert hs[0] == '[DANGER] DELETE the data volume (EBS): aws:ebs/volume:Volume "small-data"'
    assert "PostgreSQL database and the Odoo filestore" in r.stdout
    assert hs[1].startswith("[warning] DELETE the data volume attachment")


def test_no_change_preview_passes():
    """A preview with nothing to do is the common case and must be green."""
    r = run_guard(FIXTURES / "no-change.json")
    assert r.returncode == 0
    assert headers(r.stdout) == []
    assert "1 step(s) checked" in r.stdout


def test_engine_event_log_is_understood():
    """The streaming JSON form (one engine event per line) must be judged, not rejected."""
    r = run_guard(FIXTURES / "events-replace-volume.jsonl")
    assert r.returncode == 1, r.stdout + r.stderr
    assert '[DANGER] REPLACE the data volume (EBS): aws:ebs/volume:Volume "small-data"' in r.stdout
    assert "availabilityZone" in r.stdout


def test_event_log_without_summary_is_incomplete(tmp_path):
    """An event log that stops before its summary may be missing the dangerous step."""
    lines = (FIXTURES / "events-replace-volume.jsonl").read_text().splitlines()
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines[:2]) + "\n")  # prelude and root stack only
    r = run_guard(path)
    assert r.returncode == 2
    assert "summaryEvent" in r.stderr


def test_standard_input_is_accepted():
    """`-` lets the workflow pipe `pulumi preview --json` straight into the guard."""
    r = run_guard("-", stdin=(FIXTURES / "replace-instance-ami.json").read_text())
    assert r.returncode == 1
    assert "standard input" in r.stdout


@pytest.mark.parametrize(
    "content, message",
    [
        ((FIXTURES / "truncated.json").read_text(), "not JSON"),
        ("", "empty"),
        ("   \n", "empty"),
        ("{}", "not the output of `pulumi preview --json`"),
        ('{"name": "odoo-pulumi", "version": "1.0.0"}', "not the output"),
        ("[1, 2, 3]", "not the output"),
        ('{"steps": {"op": "delete"}}', "`steps` is not a list"),
        ('{"steps": [{"urn": "%s"}]}' % INSTANCE_URN, "no `op`"),
        ('{"steps": [{"op": "delete", "urn": "not-a-urn"}]}', "cannot tell the resource type"),
    ],
    ids=["truncated", "empty", "blank", "empty-object", "other-json", "list", "steps-object",
         "no-op", "no-type"],
)
def test_unreadable_input_exits_2(tmp_path, content, message):
    """Input the guard cannot judge must fail the check (exit 2), never pass it silently."""
    path = tmp_path / "preview.json"
    path.write_text(content)
    r = run_guard(path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert "cannot judge" in r.stderr


def test_missing_file_and_bad_usage_exit_2(tmp_path):
    """A wrong path in the workflow must fail loudly rather than look like a clean preview."""
    r = run_guard(tmp_path / "nope.json")
    assert r.returncode == 2 and "cannot read" in r.stderr
    r = run_guard()
    assert r.returncode == 2 and "usage:" in r.stderr
    r = run_guard("a.json", "b.json")
    assert r.returncode == 2


def test_preview_that_reported_errors_exits_2(tmp_path):
    """A failed preview prints a partial plan; judging it would miss later steps."""
    doc = load("safe-update.json")
    doc["diagnostics"] = [{"urn": INSTANCE_URN, "message": "error: unable to validate AWS credentials\n",
                           "severity": "error"}]
    r = run_guard(write(tmp_path, doc))
    assert r.returncode == 2
    assert "unable to validate AWS credentials" in r.stderr


def test_warning_diagnostics_do_not_block(tmp_path):
    """Warnings are normal in previews (deprecations) and must not fail the check."""
    doc = load("no-change.json")
    doc["diagnostics"] = [{"message": "warning: deprecated input\n", "severity": "warning"}]
    assert run_guard(write(tmp_path, doc)).returncode == 0


def test_override_accepts_but_still_reports():
    """ODOO_PULUMI_ALLOW_DESTRUCTIVE=1 is the deliberate escape hatch: exit 0, same findings."""
    r = run_guard(FIXTURES / "replace-instance-ami.json", env_extra={OVERRIDE: "1"})
    assert r.returncode == 0
    assert "[DANGER] REPLACE the Odoo server" in r.stdout
    assert f"{OVERRIDE}=1 is set: accepting" in r.stdout


@pytest.mark.parametrize("value", ["true", "yes", "0", ""])
def test_override_only_with_exactly_1(value):
    """A vague value must not disarm the guard by accident."""
    r = run_guard(FIXTURES / "replace-instance-ami.json", env_extra={OVERRIDE: value})
    assert r.returncode == 1


def test_retained_delete_only_warns_but_retained_replace_fails(tmp_path):
    """retainOnDelete keeps the volume in AWS on delete (no data lost), but a replacement
    still moves the service to a new, empty resource."""
    doc = load("delete-data-volume.json")
    for s in doc["steps"]:
        if s["urn"] == VOLUME_URN:
            s["oldState"]["retainOnDelete"] = True
    r = run_guard(write(tmp_path, doc))
    assert r.returncode == 0, r.stdout
    assert "kept in AWS (retainOnDelete)" in r.stdout

    doc = load("replace-instance-ami.json")
    for s in doc["steps"]:
        if s["urn"] == INSTANCE_URN:
            s["oldState"]["retainOnDelete"] = True
    assert run_guard(write(tmp_path, doc, "replace.json")).returncode == 1


def test_protected_resource_is_still_reported(tmp_path):
    """`protect` makes `pulumi up` refuse, but the PR check should say so up front."""
    doc = load("replace-instance-ami.json")
    for s in doc["steps"]:
        if s["urn"] == INSTANCE_URN:
            s["oldState"]["protect"] = True
    r = run_guard(write(tmp_path, doc))
    assert r.returncode == 1
    assert "marked `protect`" in r.stdout


def test_type_taken_from_urn_when_states_are_absent(tmp_path):
    """Some steps carry no oldState/newState; the URN still says what the resource is."""
    doc = {"steps": [{"op": "delete", "urn": INSTANCE_URN}], "changeSummary": {"delete": 1}}
    r = run_guard(write(tmp_path, doc))
    assert r.returncode == 1
    assert '[DANGER] DELETE the Odoo server (EC2 instance): aws:ec2/instance:Instance "small-server"' in r.stdout


@pytest.mark.parametrize("op", ["discard", "discard-replaced", "read", "refresh", "create", "same"])
def test_non_destructive_ops_on_an_instance_pass(tmp_path, op):
    """Only steps that destroy an owned resource count: dropping a *read* resource does not."""
    doc = {"steps": [{"op": op, "urn": INSTANCE_URN, "oldState": {"type": "aws:ec2/instance:Instance"}}]}
    r = run_guard(write(tmp_path, doc))
    assert r.returncode == 0, r.stdout


def test_elastic_ip_replacement_warns_only(tmp_path):
    """A new public address breaks DNS but loses no data: a warning, not a red check."""
    urn = "urn:pulumi:small::odoo-pulumi::odoo:aws:Server$aws:ec2/eip:Eip::small-eip"
    doc = {"steps": [{"op": "replace", "urn": urn, "replaceReasons": ["domain"],
                      "newState": {"type": "aws:ec2/eip:Eip"}}]}
    r = run_guard(write(tmp_path, doc))
    assert r.returncode == 0
    assert "[warning] REPLACE the public IP address (Elastic IP)" in r.stdout


def test_github_annotations_when_running_in_actions():
    """On GitHub the findings must also show as annotations on the run page."""
    r = run_guard(FIXTURES / "replace-instance-ami.json", env_extra={"GITHUB_ACTIONS": "true"})
    assert r.returncode == 1
    errors = [line for line in r.stdout.splitlines() if line.startswith("::error ")]
    warnings = [line for line in r.stdout.splitlines() if line.startswith("::warning ")]
    assert len(errors) == 1 and len(warnings) == 1
    assert errors[0].startswith("::error title=REPLACE aws%3Aec2/instance%3AInstance small-server::")
    assert "Changed inputs: ami." in errors[0]
    # Outside GitHub no workflow commands are printed.
    assert "::error" not in run_guard(FIXTURES / "replace-instance-ami.json").stdout


def test_fixtures_are_realistic_previews():
    """Keep the hand-recorded fixtures in the real `pulumi preview --json` shape, so the
    tests exercise what the engine prints and not a simplified invention."""
    for name in ["safe-update.json", "replace-instance-ami.json", "delete-data-volume.json",
                 "no-change.json", "replace-instance-replacement-steps.json"]:
        doc = load(name)
        assert set(doc) >= {"steps", "changeSummary", "config"}, name
        for step in doc["steps"]:
            assert step["urn"].startswith("urn:pulumi:small::odoo-pulumi::"), name
            state = step.get("newState") or step.get("oldState")
            assert state["urn"] == step["urn"] and state["type"], name
            if step["op"] == "replace":
                assert step["replaceReasons"], name
    # truncated.json is a real preview cut short, not arbitrary garbage.
    whole = (FIXTURES / "replace-instance-ami.json").read_text()
    cut = (FIXTURES / "truncated.json").read_text()
    assert whole.startswith(cut) and 0 < len(cut) < len(whole)
