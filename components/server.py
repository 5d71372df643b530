"""The AWS target: one EC2 instance sized for the office, its data on a volume that outlives it.

`AwsServer` builds everything the server needs on AWS: the Ubuntu 24.04 AMI lookup, a
security group (HTTP/HTTPS from the world, SSH from the admins only), a key pair, an
IAM role for Session Manager, the instance (IMDSv2, encrypted gp3 root), a separate
encrypted data volume kept even by `pulumi destroy`, an Elastic IP and, with a hosted
zone, the DNS record.

Resizing must keep the data. Every input that changes with `users` (the instance type,
tags) is updated in place by AWS (stop, modify, start); the data volume and its
attachment never depend on `users`. `tests/test_resize_safety.py` proves it.

The decisions (`ingress_plan`, `pick_subnet`, `check_architecture`, ...) live in
odoo_pulumi/aws.py, without Pulumi; the component only wires them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.tagging import tagged
from odoo_pulumi.aws import (CANONICAL_OWNER, UBUNTU_ARCH, WORLD_IPV4, WORLD_IPV6, ami_filters,
                             assume_role_policy, check_architecture, ingress_plan, instance_tags, pick_subnet,
                             project_tags)
from odoo_pulumi.instance_types import BY_NAME
from odoo_pulumi.settings import Settings
from odoo_pulumi.sizing import Sizing

TYPE_TOKEN = "odoo:aws:Server"

DATA_DEVICE = "/dev/sdf"  # appears as an NVMe device whose serial is the volume id
SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
# EC2 states in which an instance still holds its root volume (and so its AMI).
LIVE_STATES = ["pending", "running", "stopping", "stopped"]

# The instance inputs Pulumi must never act on after creation:
# - ami: a newer Ubuntu image published by Canonical must not replace a running server;
# - key_name: the key pair is read once at first boot; rotating `sshPublicKey` replaces
#   the key pair (new name) and would otherwise replace the instance.
INSTANCE_IGNORE_CHANGES = ["ami", "key_name"]


# --- the component -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsServerArgs:
    """What the AWS server is built from: the validated settings and their sizing."""

    settings: Settings
    sizing: Sizing

    def __post_init__(self) -> None:
        s, z = self.settings, self.sizing
        if s.target != "aws":
            raise ValueError(f"AwsServer needs target=aws (stack {s.stack!r} has target={s.target!r})")
        if not s.ssh_public_key:
            raise ValueError("AwsServer needs sshPublicKey (the public half of sshPrivateKey)")
        if z.users != s.users:
            raise ValueError(f"sizing is for {z.users} users but the settings say {s.users}")
        if z.arch not in UBUNTU_ARCH:
            raise ValueError(f"sizing picked arch {z.arch!r}; Ubuntu images exist for {', '.join(UBUNTU_ARCH)}")


class AwsServer(pulumi.ComponentResource):
    """The EC2 server of one stack, with its data volume, address and DNS record."""

    role: aws.iam.Role
    security_group: aws.ec2.SecurityGroup
    instance: aws.ec2.Instance
    data_volume: aws.ebs.Volume
    eip: aws.ec2.Eip
    public_ip: pulumi.Output[str]
    instance_id: pulumi.Output[str]
    instance_type: pulumi.Output[str]
    data_volume_id: pulumi.Output[str]
    workers: int
    sizing_summary: str

    def __init__(self, name: str, args: AwsServerArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, tagged(args.settings, opts))
        s, z = args.settings, args.sizing
        self._prefix, self._child = name, pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)

        # Look before acting: an existing instance of another architecture stops here.
        check_architecture(self._existing_instances(s, invoke), z)
        ami_id = s.ami or aws.ec2.get_ami(
            owners=[CANONICAL_OWNER], most_recent=True, filters=ami_filters(z.arch), opts=invoke
        ).id
        vpc_id, subnet_id, zone = self._network(s, invoke)

        self.security_group = self._firewall(s, vpc_id)
        key, profile, ssm = self._identity(s)
        self.instance = self._instance(s, z, ami_id, subnet_id, key, profile, ssm)
        self.data_volume, attachment = self._data_volume(s, zone)
        self.eip, association = self._address(s)

        # The address resolves only once it is associated and the data volume attached, so
        # whatever connects to it (provisioning) waits for both.
        self.public_ip = pulumi.Output.all(self.eip.public_ip, association.id, attachment.id).apply(lambda v: v[0])
        self.instance_id = self.instance.id
        self.instance_type = self.instance.instance_type
        self.data_volume_id = self.data_volume.id
        self.workers = z.workers
        self.sizing_summary = z.summary
        self.register_outputs({
            "public_ip": self.public_ip,
            "instance_id": self.instance_id,
            "instance_type": self.instance_type,
            "data_volume_id": self.data_volume_id,
            "workers": self.workers,
            "sizing_summary": self.sizing_summary,
        })

    # --- the parts of the server -----------------------------------------------------------------

    def _firewall(self, s: Settings, vpc_id: str) -> aws.ec2.SecurityGroup:
        """The security group and its rules: ingress_plan's, and all outbound."""
        name = self._prefix
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            # The description forces replacement when it changes: keep it constant.
            description="odoo-pulumi server: HTTP/HTTPS from anywhere, SSH from admins",
            vpc_id=vpc_id,
            tags={"Name": f"odoo-{s.stack}"},
            opts=self._child,
        )
        if s.allow_ssh_from_anywhere:
            pulumi.log.warn(
                "allowSshFromAnywhere is true: SSH (port 22) is open to 0.0.0.0/0 and ::/0. "
                "List your addresses in adminCidrs and turn it off.",
                resource=self,
            )
        for rule in ingress_plan(s):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{rule.key}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=rule.port,
                to_port=rule.port,
                cidr_ipv6=rule.cidr if rule.ipv6 else None,
                cidr_ipv4=None if rule.ipv6 else rule.cidr,
                description=rule.description,
                opts=self._child,
            )
        for key, cidr, ipv6 in (("egress-ipv4", WORLD_IPV4, False), ("egress-ipv6", WORLD_IPV6, True)):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{key}",
                security_group_id=group.id,
                ip_protocol="-1",
                cidr_ipv6=cidr if ipv6 else None,
                cidr_ipv4=None if ipv6 else cidr,
                description="all outbound (apt, Let's Encrypt, S3, mail)",
                opts=self._child,
            )
        return group

    def _identity(self, s: Settings) -> tuple[aws.ec2.KeyPair, aws.iam.InstanceProfile, aws.iam.RolePolicyAttachment]:
        """The key pair, and the role (Session Manager; Backups adds its upload right)."""
        name = self._prefix
        key = aws.ec2.KeyPair(f"{name}-key", public_key=s.ssh_public_key, opts=self._child)
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy(),
            description=f"odoo-pulumi {s.stack}: the server's identity (Session Manager, backups)",
            opts=self._child,
        )
        ssm = aws.iam.RolePolicyAttachment(
            f"{name}-ssm", role=self.role.name, policy_arn=SSM_POLICY_ARN, opts=self._child
        )
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=self.role.name, opts=self._child)
        return key, profile, ssm

    def _instance(self, s: Settings, z: Sizing, ami_id: str, subnet_id: str, key: aws.ec2.KeyPair,
                  profile: aws.iam.InstanceProfile, ssm: aws.iam.RolePolicyAttachment) -> aws.ec2.Instance:
        """The instance: IMDSv2 only, an encrypted gp3 root, stopped (not terminated) on shutdown."""
        return aws.ec2.Instance(
            f"{self._prefix}-instance",
            ami=ami_id,
            instance_type=z.instance_type,
            subnet_id=subnet_id,
            vpc_security_group_ids=[self.security_group.id],
            key_name=key.key_name,
            iam_instance_profile=profile.name,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1,
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_type="gp3", volume_size=s.root_volume_gib, encrypted=True, delete_on_termination=True,
                # A volume's tags inside the instance: no resource of their own, so written out.
                tags={**project_tags(s), "Name": f"odoo-{s.stack}-root", "Role": "root"},
            ),
            disable_api_termination=s.production,
            instance_initiated_shutdown_behavior="stop",
            tags=instance_tags(s, z),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=INSTANCE_IGNORE_CHANGES, depends_on=[ssm]),
        )

    def _data_volume(self, s: Settings, zone: str) -> tuple[aws.ebs.Volume, aws.ec2.VolumeAttachment]:
        """The data: its own volume, in the subnet's zone, never deleted by Pulumi."""
        volume = aws.ebs.Volume(
            f"{self._prefix}-data",
            availability_zone=zone,
            size=s.data_volume_gib,
            type="gp3",
            encrypted=True,
            tags={"Name": f"odoo-{s.stack}-data", "Role": "data"},
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        attachment = aws.ec2.VolumeAttachment(
            f"{self._prefix}-data-attachment",
            device_name=DATA_DEVICE,
            volume_id=volume.id,
            instance_id=self.instance.id,
            stop_instance_before_detaching=True,
            opts=self._child,
        )
        return volume, attachment

    def _address(self, s: Settings) -> tuple[aws.ec2.Eip, aws.ec2.EipAssociation]:
        """A stable address (an Elastic IP) and, with a hosted zone, its DNS record."""
        name = self._prefix
        eip = aws.ec2.Eip(f"{name}-eip", domain="vpc", tags={"Name": f"odoo-{s.stack}"}, opts=self._child)
        association = aws.ec2.EipAssociation(
            f"{name}-eip-association", allocation_id=eip.allocation_id, instance_id=self.instance.id,
            opts=self._child,
        )
        if s.hosted_zone_id and s.domain:
            aws.route53.Record(
                f"{name}-dns",
                zone_id=s.hosted_zone_id,
                name=s.domain,
                type="A",
                ttl=300,
                records=[eip.public_ip],
                opts=self._child,
            )
        return eip, association

    # --- lookups -------------------------------------------------------------------------------

    @staticmethod
    def _existing_instances(s: Settings, invoke: pulumi.InvokeOptions) -> list[tuple[str, str, str]]:
        """(id, type, architecture) of this stack's live instances, found by their tags."""
        found = aws.ec2.get_instances(
            instance_tags=project_tags(s), instance_state_names=LIVE_STATES, opts=invoke
        )
        out = []
        for instance_id in sorted(found.ids or []):
            itype = aws.ec2.get_instance(instance_id=instance_id, opts=invoke).instance_type
            known = BY_NAME.get(itype)
            if known is not None:
                arch = known.arch
            else:  # a type set outside the catalogue (by hand): ask AWS
                archs = aws.ec2.get_instance_type(instance_type=itype, opts=invoke).supported_architectures
                arch = next((a for a in archs if a in UBUNTU_ARCH), archs[0] if archs else "")
            out.append((instance_id, itype, arch))
        return out

    @staticmethod
    def _network(s: Settings, invoke: pulumi.InvokeOptions) -> tuple[str, str, str]:
        """(vpc id, subnet id, availability zone): the stack's pins, else the default VPC."""
        if s.subnet_id:
            sub = aws.ec2.get_subnet(id=s.subnet_id, opts=invoke)
            if s.vpc_id and sub.vpc_id != s.vpc_id:
                raise ValueError(f"subnetId {s.subnet_id} is in {sub.vpc_id}, not in vpcId {s.vpc_id}")
            return sub.vpc_id, sub.id, sub.availability_zone
        vpc_id = s.vpc_id or aws.ec2.get_vpc(default=True, opts=invoke).id
        ids = aws.ec2.get_subnets(
            filters=[
                {"name": "vpc-id", "values": [vpc_id]},
                {"name": "map-public-ip-on-launch", "values": ["true"]},
            ],
            opts=invoke,
        ).ids
        candidates = []
        for subnet_id in ids or []:
            sub = aws.ec2.get_subnet(id=subnet_id, opts=invoke)
            candidates.append((sub.id, sub.availability_zone))
        try:
            subnet_id, zone = pick_subnet(candidates)
        except ValueError as e:
            raise ValueError(f"VPC {vpc_id}: {e}") from None
        return vpc_id, subnet_id, zone
