"""The remote provisioning as one Pulumi component: a bare server to Odoo behind Nginx.

Each step of `odoo_pulumi/steps.py` becomes one `pulumi_command.remote.Command`: `create`
is the short fixed command of `steps.create_command` and the step's script arrives on
stdin, so nothing secret is ever part of a command string (which Pulumi shows in errors).
Steps that embed a secret file get a secret stdin and secret outputs, and print only
through their output guard (progress lines, never a secret), which is logged. A
step re-runs only when its own script changed; `health` re-runs whenever any did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pulumi
from pulumi_command import remote

from odoo_pulumi import steps
from odoo_pulumi.backup import Destination
from odoo_pulumi.settings import Settings
from odoo_pulumi.sizing import Sizing


@dataclass
class ProvisioningArgs:
    """What the provisioning needs.

    host: the server's address (an Elastic IP for aws, settings.host for host): a new
        address re-runs every step, so it must be stable.
    files: `render.server_files(...)` as a (secret) Output.
    private_key: the SSH private key (secret Output).
    admin_password, admin_user_password: the adminPassword and adminUserPassword secrets
        (secret Outputs): odoo-config hashes them on the server (600,000 rounds of
        PBKDF2 each: never in the program, whose every preview would pay for them).
    data_volume_id: the EBS volume to format/mount (target aws only).
    server_id: the instance id (aws): a replaced server re-runs every step even when
        its Elastic IP stays the same.
    backup_destination: where `backup.server_files` sends the backups (target aws: the
        stack's bucket, required; target host: the setting's, the default).
    depends_on: resources that must exist first (instance, volume attachment, EIP).
    """

    host: pulumi.Input[str]
    settings: Settings
    sizing: Sizing
    files: pulumi.Output[Mapping[str, Any]]
    private_key: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    admin_user_password: pulumi.Output[str]
    data_volume_id: Optional[pulumi.Input[str]] = None
    server_id: Optional[pulumi.Input[str]] = None
    backup_destination: Optional[pulumi.Input[Destination]] = None
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        s = self.settings
        if s.target == "aws" and self.data_volume_id is None:
            raise ValueError("ProvisioningArgs: target aws needs data_volume_id")
        if s.target == "host" and self.data_volume_id is not None:
            raise ValueError("ProvisioningArgs: data_volume_id is for target aws only")
        if s.target == "aws" and self.backup_destination is None:
            raise ValueError("ProvisioningArgs: target aws needs backup_destination (the stack's bucket)")
        if s.odoo_source == "archive" and not s.odoo_archive:
            raise ValueError("ProvisioningArgs: odooSource archive needs odooArchive")


def health_summary(stdout: Optional[str]) -> str:
    """The health step's verdict: its last line before `changed=0`."""
    lines = [line for line in (stdout or "").splitlines() if line.strip()]
    verdicts = [line for line in lines if "changed=" not in line]
    return verdicts[-1] if verdicts else ""


class Provisioning(pulumi.ComponentResource):
    """`odoo:remote:Provisioning`: the ordered remote steps, the archive upload and the health result."""

    commands: dict[str, remote.Command]
    health: pulumi.Output[str]

    def __init__(self, name: str, args: ProvisioningArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("odoo:remote:Provisioning", name, None, opts)
        s = args.settings
        plan = steps.plan(s)

        # One connection for every step: a booting server refuses SSH for a while, so the
        # dial limit comes from the settings (120 tries ~ several minutes).
        connection = remote.ConnectionArgs(
            host=args.host,
            port=s.port,
            user=s.ssh_user,
            private_key=pulumi.Output.secret(args.private_key),
            dial_error_limit=s.dial_error_limit,
        )

        archive_sha = steps.file_sha256(s.odoo_archive) if s.odoo_source == "archive" else None
        scripts = pulumi.Output.all(args.files, args.host, args.data_volume_id, args.admin_password,
                                    args.admin_user_password, args.backup_destination).apply(
            lambda a: steps.render_scripts(s, a[0], host=a[1], archive_sha256=archive_sha, data_volume_id=a[2],
                                           admin_password=a[3], admin_user_password=a[4], backup_destination=a[5])
        )
        triggers = [args.server_id] if args.server_id is not None else None

        self.commands = {}
        upload: Optional[remote.CopyToRemote] = None
        for step in plan:
            deps: list[pulumi.Resource] = [self.commands[d] for d in step.depends_on]
            if step.name == "wait":
                deps += list(args.depends_on)
            if step.name == "odoo-install" and archive_sha:
                # The operator's archive, uploaded as the SSH user to a staging path named by
                # its hash; the install step checks the hash before extracting it.
                upload = remote.CopyToRemote(
                    f"{name}-odoo-archive",
                    connection=connection,
                    source=pulumi.FileAsset(s.odoo_archive),
                    remote_path=steps.archive_staging_path(s, archive_sha),
                    triggers=triggers,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.commands["wait"]]),
                )
                deps.append(upload)
            secret_stdin = steps.step_is_secret(step)
            # A step that writes a secret file prints only through its output guard
            # (templates/scripts/_step.sh.j2): its progress lines are logged like any
            # other step's, and its stdout/stderr stay secret in the state all the same.
            guarded = steps.step_embeds_secret(step)
            stdin = scripts.apply(lambda d, n=step.name: d[n])
            stdin = pulumi.Output.secret(stdin) if secret_stdin else pulumi.Output.unsecret(stdin)
            self.commands[step.name] = remote.Command(
                f"{name}-{step.name}",
                connection=connection,
                create=steps.create_command(s),
                delete=steps.delete_command(step, s),
                stdin=stdin,
                triggers=triggers,
                # Previous output in the environment needs AcceptEnv on the server and is
                # of no use here: off.
                add_previous_output_in_env=False,
                logging=remote.Logging.STDOUT_AND_STDERR,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=deps,
                    additional_secret_outputs=(["stdin", "stdout", "stderr"] if guarded
                                               else ["stdin"] if secret_stdin else None),
                    # A step times out only if the server hangs: apt and pip can take long.
                    custom_timeouts=pulumi.CustomTimeouts(create="40m", update="40m", delete="10m"),
                ),
            )

        self.health = pulumi.Output.unsecret(self.commands["health"].stdout.apply(health_summary))
        self.register_outputs({
            "health": self.health,
            "steps": [st.name for st in plan],
            "archive_sha256": archive_sha,
        })
