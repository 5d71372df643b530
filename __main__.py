"""odoo-pulumi: read the stack's settings, size the server, build it, export what an
operator needs. Only wiring lives here: decisions live in odoo_pulumi/, resources in
components/."""

import atexit
import gc

# Every preview runs this program (~0.4 s) and waits for its process to exit. Python's
# cyclic garbage collector has nothing to free among the modules and the resource graph
# (they live to the end) but traverses them all: ~25 ms of collections during the run and
# a last full collection of ~60 ms when the interpreter exits (issue 13, measured). So
# what exists after the imports is moved out of its reach (gc.freeze), and at exit
# everything is (registered first, this handler runs last): the last collection has
# nothing to traverse. Nothing here needs a reference cycle finalised at exit; streams are
# flushed and files closed as usual.
atexit.register(gc.freeze)

import os  # noqa: E402

import pulumi  # noqa: E402

# The SDK sends each of its own debug lines ("registering resource", "prepared", "RPC
# prepared", "successful": four per resource, 68 per preview) to the engine as a blocking
# call, ~1 ms each, most of them on the path each registration waits on (issue 13,
# measured: 95 ms of wall time and 135 ms of CPU per no-op preview, docs/preview-cost.md).
# The CLI shows them only under --debug, and the engine logs each registration itself
# (pulumi -v=5). So they are dropped here, unless an operator debugging the SDK asks for
# them: ODOO_PULUMI_SDK_DEBUG=1 pulumi preview --debug.
# The program's own messages are info and warnings: they are kept.
if os.environ.get("ODOO_PULUMI_SDK_DEBUG") != "1":
    pulumi.log.debug = lambda *args, **kwargs: None

from odoo_pulumi import backup, render  # noqa: E402
from odoo_pulumi.settings import (ROOT, SECRET_KEYS, Settings, SettingsError, check_stack_file,  # noqa: E402
                                  declared_config, load_settings, read_stack_file, sizing_for)
from odoo_pulumi.steps import ssh_access_summary  # noqa: E402

gc.freeze()


def read_settings(stack: str) -> Settings:
    """The stack's settings, validated once, before any resource exists.

    Each declared key is read through pulumi.Config (the engine hands over text). A
    secret's value is only judged for strength by load_settings, never kept nor printed;
    one stored in plain text is passed on as a plain setting, which load_settings refuses
    by name. pulumi.Config cannot list the keys it was given, so the stack file is read
    too: its undeclared keys (a typo) and its ambiguous numbers (`users: 015`) are refused.
    """
    config = pulumi.Config()
    raw, secrets_present, secret_values = {}, set(), {}
    for key in declared_config():
        value = config.get(key)
        if value is None:
            continue
        if key in SECRET_KEYS:
            secrets_present.add(key)
            secret_values[key] = value
            if pulumi.runtime.is_config_secret(config.full_key(key)):
                continue
        raw[key] = value
    try:
        if (ROOT / "stacks" / f"Pulumi.{stack}.yaml").exists():
            check_stack_file(stack)
            raw.update({k: v for k, v in read_stack_file(stack).items() if k not in declared_config()})
        return load_settings(raw, stack, secrets_present, secret_values)
    except SettingsError as e:
        raise pulumi.RunError(str(e)) from None


def ssh_command(settings: Settings, ip: str) -> str:
    port = f"-p {settings.port} " if settings.port != 22 else ""
    return f"ssh -i <your key> {port}{settings.ssh_user}@{ip}"


settings = read_settings(pulumi.get_stack())
sizing = sizing_for(settings)

config = pulumi.Config()
private_key = config.require_secret("sshPrivateKey")
# Every server file is plain: odoo.conf holds a slot for the master password's hash.
# Both passwords go only to the (secret) odoo-config step, which hashes them on the
# server: the program never computes a PBKDF2 (issue 13: ~0.6 s each on every preview).
server_files = render.server_files(settings, sizing)
admin_password = config.require_secret("adminPassword")
admin_user_password = config.require_secret("adminUserPassword")

from components.provisioning import Provisioning, ProvisioningArgs  # noqa: E402  (after the settings' check)

gc.freeze()  # the SDKs' modules imported just above, as after the first imports

if settings.target == "aws":
    from components.backups import Backups, BackupsArgs
    from components.server import AwsServer, AwsServerArgs

    server = AwsServer("server", AwsServerArgs(settings=settings, sizing=sizing))
    backups = Backups("backups", BackupsArgs(settings=settings, role_name=server.role.name))
    host = server.public_ip
    bucket = pulumi.Output.all(backups.bucket_name, backups.region)
    files = bucket.apply(lambda a: {**server_files, **backup.server_files(settings, bucket=a[0], region=a[1])})
    on_aws = dict(data_volume_id=server.data_volume_id, server_id=server.instance_id, depends_on=[server, backups],
                  backup_destination=bucket.apply(lambda a: backup.destination(settings, a[0], a[1])))
    pulumi.export("instance_id", server.instance_id)
    pulumi.export("backup_bucket", backups.bucket_name)
    pulumi.export("backup_prefix", backups.prefix)
else:
    if not settings.host_vcpus:
        pulumi.log.warn(
            f"target host: the server's size is not declared, so Odoo and PostgreSQL are sized as if it "
            f"had {sizing.vcpus} vCPU and {sizing.memory_mib} MiB (like {sizing.instance_type}); set "
            f"hostVcpus and hostMemoryMiB to have the real server checked"
        )
    host = pulumi.Output.from_input(settings.host)
    files = {**server_files, **backup.server_files(settings)}
    on_aws = {}

provisioning = Provisioning("odoo", ProvisioningArgs(
    host=host, settings=settings, files=files, private_key=private_key,
    admin_password=admin_password, admin_user_password=admin_user_password, **on_aws))

ssh = host.apply(lambda ip: ssh_command(settings, ip))
pulumi.export("url", settings.url or host.apply(lambda ip: f"http://{ip}"))
pulumi.export("public_ip", host)
pulumi.export("ssh_command", ssh)
pulumi.export("logs_command", ssh.apply(lambda c: f"{c} sudo journalctl -u odoo -f"))
pulumi.export("instance_type", sizing.instance_type if settings.target == "aws" else "(existing host)")
pulumi.export("workers", sizing.workers)
pulumi.export("max_cron_threads", sizing.max_cron_threads)
pulumi.export("sizing", sizing.summary)
pulumi.export("odoo_version", settings.odoo_version)
pulumi.export("health", provisioning.health)
# What the base step does to SSH access, shown by every preview (issue 11.2).
pulumi.export("ssh_access", ssh_access_summary(settings))
pulumi.log.info(f"SSH access after this deployment: {ssh_access_summary(settings)}")
