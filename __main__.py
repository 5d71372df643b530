"""odoo-pulumi: read the stack's settings, size the server, build it, export what an
operator needs. Only wiring lives here; decisions live in components/."""

import pulumi

from odoo_pulumi import backup, render
from odoo_pulumi.settings import (PROJECT, SECRET_KEYS, SettingsError, check_stack_file, load_settings,
                                 sizing_for)


def read_stack_config() -> tuple[dict, set[str], dict[str, str]]:
    """The project's config as the engine hands it over (strings), which secret keys
    are present, and their values: load_settings only judges their strength (never
    keeps or prints them); the program uses them through Outputs only."""
    everything = {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    raw, secrets, values = {}, set(), {}
    for full_key, value in everything.items():
        ns, _, key = full_key.partition(":")
        if ns != PROJECT:
            continue
        if key in SECRET_KEYS:
            if not pulumi.runtime.is_config_secret(full_key) and key not in _env_secret_keys():
                raw[key] = str(value)  # plain text: load_settings refuses it by name
            secrets.add(key)
            values[key] = "" if value is None else str(value)
        else:
            raw[key] = value
    return raw, secrets, values


def _env_secret_keys() -> set[str]:
    return {k.partition(":")[2] for k in pulumi.runtime.config.get_config_secret_keys_env()}


raw, secrets_present, secret_values = read_stack_config()
try:
    check_stack_file(pulumi.get_stack())  # `users: 015`: the engine would hand over "13"
    settings = load_settings(raw, pulumi.get_stack(), secrets_present, secret_values)
except SettingsError as e:
    raise pulumi.RunError(str(e)) from None
del secret_values
sizing = sizing_for(settings)

config = pulumi.Config()
admin_password = config.require_secret("adminPassword")
private_key = config.require_secret("sshPrivateKey")
admin_user_password = config.require_secret("adminUserPassword")
# Both passwords go to the (secret) odoo-config step, which hashes them on the server:
# the program never computes their PBKDF2 (issue 13: ~0.6 s each on every preview).
files = pulumi.Output.secret(render.server_files(settings, sizing))

from components.provisioning import Provisioning, ProvisioningArgs  # noqa: E402
from odoo_pulumi.steps import ssh_access_summary  # noqa: E402

if settings.target == "aws":
    from components.server import AwsServer, AwsServerArgs

    from components.backups import Backups, BackupsArgs

    server = AwsServer("server", AwsServerArgs(settings=settings, sizing=sizing))
    backups = Backups("backups", BackupsArgs(settings=settings, role_name=server.role.name))
    files = pulumi.Output.all(files, backups.bucket_name, backups.region).apply(
        lambda a: {**a[0], **backup.server_files(settings, bucket=a[1], region=a[2])})
    backup_destination = pulumi.Output.all(backups.bucket_name, backups.region).apply(
        lambda a: backup.destination(settings, a[0], a[1]))
    host = server.public_ip
    provisioning = Provisioning(
        "odoo",
        ProvisioningArgs(
            host=host, settings=settings, sizing=sizing, files=files, private_key=private_key,
            admin_password=admin_password, admin_user_password=admin_user_password,
            data_volume_id=server.data_volume_id, server_id=server.instance_id,
            backup_destination=backup_destination, depends_on=[server, backups],
        ),
    )
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
    files = files.apply(lambda f: {**f, **backup.server_files(settings)})
    provisioning = Provisioning(
        "odoo",
        ProvisioningArgs(host=host, settings=settings, sizing=sizing, files=files, private_key=private_key,
                         admin_password=admin_password, admin_user_password=admin_user_password),
    )

ssh = host.apply(
    lambda ip: f"ssh -i <your key> -p {settings.port} {settings.ssh_user}@{ip}"
    if settings.port != 22 else f"ssh -i <your key> {settings.ssh_user}@{ip}"
)
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
