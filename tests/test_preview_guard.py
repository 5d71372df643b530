"""Tests for scripts/preview-guard, the check that stops a merge destroying the server,
and for the GitHub workflows that run it.

The script is run as a subprocess, exactly as the workflows run it, on previews
recorded by hand in tests/fixtures/preview/ (see the README there) and on variants
derived from them here. The workflows are read as data and their shell steps run
locally, since GitHub itself is out of reach from the test machines.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # PyYAML comes with the pulumi SDK

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


# --- The workflows that run the guard -------------------------------------------------
# The guard only protects anything if the workflows run it at the right moment and let
# its exit status fail the job; these tests read the workflows and run their shell.

WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name):
    """A workflow as data (PyYAML resolves the anchors deploy.yml uses)."""
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def step_named(steps, prefix):
    matches = [s for s in steps if s.get("name", "").startswith(prefix)]
    assert len(matches) == 1, [s.get("name") for s in steps]
    return matches[0]


def run_step(script, cwd, **env):
    """Run a workflow `run:` script the way GitHub does (bash -eo pipefail)."""
    full = {**os.environ, **env}
    full.pop(OVERRIDE, None)
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          cwd=cwd, env=full, capture_output=True, text=True, timeout=60)


def test_preview_workflow_never_gives_secrets_to_forks():
    """pull_request_target would run with secrets on a fork's code; every job that can
    reach AWS must also skip pull requests from forks."""
    wf = workflow("preview.yml")
    assert list(wf["on"]) == ["pull_request"]
    assert wf["permissions"] == {}
    fork_check = "github.event.pull_request.head.repo.full_name == github.repository"
    for name, job in wf["jobs"].items():
        assert fork_check in job["if"], name
    perms = wf["jobs"]["preview"]["permissions"]
    assert perms == {"contents": "read", "id-token": "write", "pull-requests": "write"}


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml"])
def test_workflows_use_oidc_not_stored_keys(name):
    """Long-lived AWS keys in secrets are what OIDC replaces: none may be referenced."""
    text = (WORKFLOWS / name).read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "role-to-assume: ${{ vars.AWS_ROLE_ARN }}" in text
    assert "cloud-url: ${{ vars.PULUMI_BACKEND_URL }}" in text
    assert "secrets.PULUMI_CONFIG_PASSPHRASE" in text


def test_preview_comments_with_policy_then_guards():
    """The comment must be posted before the guard can fail the job, so reviewers see it."""
    steps = workflow("preview.yml")["jobs"]["preview"]["steps"]
    names = [s.get("name", s.get("uses")) for s in steps]
    commented = step_named(steps, "Preview ${{ matrix.stack }} (comment")
    assert commented["uses"].startswith("pulumi/actions@v")
    w = commented["with"]
    assert (w["command"], w["comment-on-pr"], w["edit-pr-comment"], w["diff"], w["policyPacks"]) == \
        ("preview", True, True, True, "policy")
    guard = step_named(steps, "Fail if the server")
    assert names.index(commented["name"]) < names.index(guard["name"])
    assert "scripts/preview-guard" in guard["run"]


def test_deploy_guards_before_up_in_every_environment():
    """Both deploy jobs (staging, production) must run the guard before `pulumi up`, in a
    per-stack concurrency group that never cancels an update half-way."""
    wf = workflow("deploy.yml")
    assert set(wf["on"]) == {"push", "workflow_dispatch"}
    assert wf["on"]["push"]["branches"] == ["main"]
    for job_name, env_name in [("staging", "staging"), ("production", "production")]:
        job = wf["jobs"][job_name]
        assert job["environment"] == env_name
        assert job["concurrency"] == {"group": "deploy-${{ matrix.stack }}", "cancel-in-progress": False}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        names = [s.get("name", s.get("uses")) for s in job["steps"]]
        guard = step_named(job["steps"], "Refuse to replace")
        up = step_named(job["steps"], "Deploy ${{ matrix.stack }}")
        assert up["with"]["command"] == "up" and up["with"]["policyPacks"] == "policy"
        assert names.index(guard["name"]) < names.index(up["name"])
    assert "staging" in wf["jobs"]["production"]["needs"]
    assert "needs.staging.result == 'success'" in wf["jobs"]["production"]["if"]
    assert OVERRIDE not in (WORKFLOWS / "deploy.yml").read_text()
    assert OVERRIDE not in (WORKFLOWS / "preview.yml").read_text()


@pytest.mark.parametrize("fixture, expected", [("replace-instance-ami.json", 1), ("safe-update.json", 0)])
def test_guard_step_fails_the_job_and_writes_the_summary(tmp_path, fixture, expected):
    """The step's own shell must pass the guard's verdict on (a `|| true` would disarm it)."""
    for wf, job, prefix in [("preview.yml", "preview", "Fail if"), ("deploy.yml", "staging", "Refuse")]:
        script = step_named(workflow(wf)["jobs"][job]["steps"], prefix)["run"]
        shutil.copy(FIXTURES / fixture, tmp_path / "preview-small.json")
        summary = tmp_path / "summary.md"
        summary.write_text("")
        r = run_step(script, ROOT, RUNNER_TEMP=str(tmp_path), STACK="small",
                     GITHUB_STEP_SUMMARY=str(summary), GITHUB_ACTIONS="true")
        assert r.returncode == expected, (wf, r.stdout, r.stderr)
        text = summary.read_text()
        assert text.startswith("### Destructive-change guard: `small`")
        assert ("[DANGER] REPLACE the Odoo server" in text) == (expected == 1)
        assert "::error" not in text  # annotations go to the log, not the summary


def _list_script(wf, job="stacks"):
    return step_named(workflow(wf)["jobs"][job]["steps"], "List the stacks")["run"]


def _stack_dir(tmp_path, files):
    (tmp_path / "stacks").mkdir()
    for name, body in files.items():
        (tmp_path / "stacks" / f"Pulumi.{name}.yaml").write_text(body)
    return tmp_path


def _outputs(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


STACK_FILES = {
    "small": "config:\n  odoo-pulumi:users: 15\n",
    "large": "config:\n  odoo-pulumi:users: 150\n  odoo-pulumi:production: true\n",
    "local": "config:\n  odoo-pulumi:target: host\n",
}


def test_stack_matrix_comes_from_the_stack_files(tmp_path):
    """New stacks must be previewed without editing the workflow, and `local` never."""
    cwd = _stack_dir(tmp_path, STACK_FILES)
    out = tmp_path / "out"
    r = run_step(_list_script("preview.yml"), cwd, GITHUB_OUTPUT=str(out), EXCLUDED_STACKS="local")
    assert r.returncode == 0, r.stderr
    assert json.loads(_outputs(out)["stacks"]) == ["large", "small"]


def test_production_stacks_are_the_ones_marked_in_their_file(tmp_path):
    """Which stack waits for a reviewer follows `odoo-pulumi:production: true`."""
    cwd = _stack_dir(tmp_path, {**STACK_FILES, "medium": "config:\n  odoo-pulumi:production: false\n"})
    out = tmp_path / "out"
    r = run_step(_list_script("deploy.yml"), cwd, GITHUB_OUTPUT=str(out), EXCLUDED_STACKS="local", ONLY_STACK="")
    assert r.returncode == 0, r.stderr
    o = _outputs(out)
    assert json.loads(o["staging"]) == ["medium", "small"]
    assert json.loads(o["production"]) == ["large"]
    # A manual run for one stack deploys only it; an unknown name is an error.
    out.write_text("")
    assert run_step(_list_script("deploy.yml"), cwd, GITHUB_OUTPUT=str(out), EXCLUDED_STACKS="local",
                    ONLY_STACK="large").returncode == 0
    assert json.loads(_outputs(out)["staging"]) == [] and json.loads(_outputs(out)["production"]) == ["large"]
    r = run_step(_list_script("deploy.yml"), cwd, GITHUB_OUTPUT=str(out), EXCLUDED_STACKS="local", ONLY_STACK="local")
    assert r.returncode == 1 and "Unknown stack" in r.stdout


@pytest.mark.slow
def test_actionlint_accepts_the_workflows_and_rejects_a_broken_copy(tmp_path):
    """scripts/lint-workflows is the only syntax check the workflows get before GitHub runs
    them: it must pass on ours and fail on a copy with a typo in a step id."""
    r = subprocess.run([str(ROOT / "scripts" / "lint-workflows")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    broken = tmp_path / "preview.yml"
    broken.write_text((WORKFLOWS / "preview.yml").read_text()
                      .replace("steps.versions.outputs.pulumi", "steps.versons.outputs.pulumi"))
    r = subprocess.run([str(ROOT / "scripts" / "lint-workflows"), str(broken)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0
    assert 'property "versons" is not defined' in r.stdout + r.stderr


def test_preview_recorded_from_the_real_engine_passes():
    """A preview printed by the real engine (local stack, users change): the guard reads
    its shape, finds the two updated commands and passes."""
    fixture = FIXTURES / "recorded-engine-local-users-change.json"
    data = json.loads(fixture.read_text())
    changed = [s for s in data["steps"] if s["op"] != "same"]
    assert {s["urn"].split("::")[-1] for s in changed} == {"odoo-odoo-config", "odoo-health"}
    r = run_guard(fixture)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
