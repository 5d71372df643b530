"""The remote provisioning as one Pulumi component: a bare server to Odoo behind Nginx.

Each step of `odoo_pulumi/steps.py` becomes one `pulumi_command.remote.Command`: `create`
is the short fixed command of `steps.create_command` and the step's script arrives on
stdin, so nothing secret is ever part of a command string (which Pulumi shows in errors).
Steps that embed a secret file get a secret stdin and secret outputs, and print only
through their output guard (progress lines, never a secret), which is logged. The
other steps' scripts are rendered from plain inputs only, so they stay plain and a
preview shows their diff. A step re-runs only when its own script changed; `health`
re-runs whenever any did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
from pulumi_command import remote

from odoo_pulumi import steps
from odoo_pulumi.backup import Destination
from odoo_pulumi.server_files import ServerFile
from odoo_pulumi.settings import Settings


@dataclass
class ProvisioningArgs:
    """What the provisioning needs.

    host: the server's address (an Elastic IP for aws, settings.host for host): a new
        address re-runs every step, so it must be stable.
    files: every server file, `render.server_files(...)` merged with the backup's, as
        plain values (an Output on aws: the bucket's name); odoo.conf holds no secret
        (render.ADMIN_PASSWD_SLOT, which odoo-config fills on the server).
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
    files: pulumi.Input[Mapping[str, ServerFile]]
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
        self._prefix = name
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
        plain_scripts, secret_scripts = self._scripts(s, args, archive_sha)
        triggers = [args.server_id] if args.server_id is not None else None

        self.commands = {}
        programs = steps.programs(s)
        for step in plan:
            deps: list[pulumi.Resource] = [self.commands[d] for d in step.depends_on]
            if step.name == "wait":
                deps += list(args.depends_on)
            if step.name == "odoo-install" and archive_sha:
                deps.append(self._upload_archive(s, connection, archive_sha, triggers))
            # The shipped programs (odoo-acceptance, odoo-backup, odoo-restore): each uploaded
            # once (after wait), and the step that installs it waits for its upload. Declared
            # here, just before that step, rather than right after wait: the SDK then
            # registers them after the steps that come first (a no-op preview is a chain of
            # registrations, each waiting for the one before).
            deps += [self._upload_program(key, program, connection, triggers)
                     for key, (program, user) in programs.items() if user == step.name]
            scripts = secret_scripts if steps.step_is_secret(step) else plain_scripts
            self.commands[step.name] = self._command(
                s, step, connection, scripts.apply(lambda d, n=step.name: d[n]), triggers, deps)

        # health's script is secret (a fingerprint of the secret ones), its stdout is not.
        self.health = self.commands["health"].stdout.apply(health_summary)
        self.register_outputs({
            "health": self.health,
            "steps": [st.name for st in plan],
            "archive_sha256": archive_sha,
        })

    def _command(self, s: Settings, step: steps.Step, connection: remote.ConnectionArgs,
                 stdin: pulumi.Output[str], triggers: Optional[list],
                 deps: list[pulumi.Resource]) -> remote.Command:
        """One step: a short fixed command, its script on stdin, logged unless secret."""
        secret_stdin = steps.step_is_secret(step)
        # A step that writes a secret file prints only through its output guard
        # (templates/scripts/_step.sh.j2): its progress lines are logged like any
        # other step's, and its stdout/stderr stay secret in the state all the same.
        guarded = steps.step_embeds_secret(step)
        return remote.Command(
            f"{self._prefix}-{step.name}",
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

    @staticmethod
    def _scripts(s: Settings, args: ProvisioningArgs,
                 archive_sha: Optional[str]) -> tuple[pulumi.Output[dict], pulumi.Output[dict]]:
        """(plain, secret) step scripts by step name.

        The plain steps are rendered from plain inputs only, so their scripts are plain
        Outputs; the secret steps (steps.step_is_secret) with the administrator passwords
        too (odoo-config hashes them on the server), so their scripts are secret Outputs.
        """
        common = pulumi.Output.all(args.files, args.host, args.data_volume_id, args.backup_destination)

        def render(a: list, passwords: tuple[Optional[str], Optional[str]] = (None, None)) -> dict[str, str]:
            return steps.render_scripts(s, a[0], host=a[1], archive_sha256=archive_sha, data_volume_id=a[2],
                                        backup_destination=a[3], admin_password=passwords[0],
                                        admin_user_password=passwords[1])

        plain = common.apply(render)
        secret = pulumi.Output.secret(pulumi.Output.all(common, args.admin_password, args.admin_user_password).apply(
            lambda a: render(a[0], (a[1], a[2]))))
        return plain, secret

    def _upload_program(self, key: str, program: ServerFile, connection: remote.ConnectionArgs,
                        triggers: Optional[list]) -> remote.CopyToRemote:
        """A program of the repository as a FileAsset (only its path and hash reach the
        engine and the state, never its bytes), uploaded as the SSH user to a staging
        path named by its hash; the step that installs it checks the hash."""
        return remote.CopyToRemote(
            f"{self._prefix}-upload-{key}",
            connection=connection,
            source=pulumi.FileAsset(program.source),
            remote_path=program.staged,
            triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.commands["wait"]]),
        )

    def _upload_archive(self, s: Settings, connection: remote.ConnectionArgs, archive_sha: str,
                        triggers: Optional[list]) -> remote.CopyToRemote:
        """The operator's archive, uploaded as the SSH user to a staging path named by its
        hash; the install step checks the hash before extracting it."""
        return remote.CopyToRemote(
            f"{self._prefix}-odoo-archive",
            connection=connection,
            source=pulumi.FileAsset(s.odoo_archive),
            remote_path=steps.archive_staging_path(s, archive_sha),
            triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.commands["wait"]]),
        )
