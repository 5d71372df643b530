"""The AWS target's decisions, without Pulumi: the Ubuntu image, the firewall rules, the
subnet, the architecture guard, the tags; the backup bucket's name and policies.

components/server.py and components/backups.py wire them into resources; the tests read
them directly.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from odoo_pulumi.checks import wide_ranges
from odoo_pulumi.settings import PROJECT, Settings
from odoo_pulumi.sizing import Sizing

CANONICAL_OWNER = "099720109477"  # Canonical's AWS account, the publisher of Ubuntu AMIs
UBUNTU_ARCH = {"x86_64": "amd64", "arm64": "arm64"}  # EC2 architecture -> Ubuntu's name
WORLD_IPV4, WORLD_IPV6 = "0.0.0.0/0", "::/0"
PUBLIC_PORTS = {"http": 80, "https": 443}
SSH_PORT = 22
SSE_ALGORITHM = "AES256"  # SSE-S3: no KMS key policy for the instance role to need
BUCKET_PREFIX_MAX = 37  # S3 bucket_prefix limit (AWS adds a unique suffix)


# --- the server ---------------------------------------------------------------------------------


def project_tags(s: Settings) -> dict[str, str]:
    """The tags every AWS resource of the stack carries (and finds its instances by)."""
    return {"Project": PROJECT, "Stack": s.stack, "ManagedBy": "pulumi"}


class ArchitectureChangeError(ValueError):
    """The sizing asks for a CPU architecture the existing instance cannot switch to."""


def ami_name_pattern(arch: str) -> str:
    """Canonical's name pattern for Ubuntu 24.04 LTS server images on gp3 for `arch`."""
    if arch not in UBUNTU_ARCH:
        raise ValueError(f"arch {arch!r} has no Ubuntu image; allowed: {', '.join(UBUNTU_ARCH)}")
    return f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{UBUNTU_ARCH[arch]}-server-*"


def ami_filters(arch: str) -> list[dict]:
    """The filters of the AMI lookup: name, hvm, and the EC2 architecture of the type."""
    return [
        {"name": "name", "values": [ami_name_pattern(arch)]},
        {"name": "virtualization-type", "values": ["hvm"]},
        {"name": "architecture", "values": [arch]},
    ]


@dataclass(frozen=True)
class IngressRule:
    """One inbound rule: a TCP port from one CIDR block (IPv4 or IPv6)."""

    key: str  # suffix of the logical name; stable for a given (port, cidr)
    port: int
    cidr: str
    ipv6: bool
    description: str


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "-", text)


def ingress_plan(settings: Settings) -> list[IngressRule]:
    """Every inbound rule of the server: 80/443 from the world, 22 from the admins.

    Nothing else is ever opened: PostgreSQL (5432) and Odoo's own ports (8069, 8072)
    listen on localhost behind Nginx. With `allowSshFromAnywhere` SSH is open to the
    world instead of the admin CIDRs (the component warns).
    """
    rules: list[IngressRule] = []
    for label, port in PUBLIC_PORTS.items():
        rules.append(IngressRule(f"{label}-ipv4", port, WORLD_IPV4, False, f"{label.upper()} from anywhere"))
        rules.append(IngressRule(f"{label}-ipv6", port, WORLD_IPV6, True, f"{label.upper()} from anywhere"))
    if settings.allow_ssh_from_anywhere:
        rules.append(IngressRule("ssh-world-ipv4", SSH_PORT, WORLD_IPV4, False, "SSH from anywhere (allowSshFromAnywhere)"))
        rules.append(IngressRule("ssh-world-ipv6", SSH_PORT, WORLD_IPV6, True, "SSH from anywhere (allowSshFromAnywhere)"))
        return rules
    # The union is judged, not each entry: 0.0.0.0/1 + 128.0.0.0/1 is the whole Internet
    # too. The settings refuse it first; this guards any other caller.
    wide = wide_ranges(settings.admin_cidrs)
    if wide:
        raise ValueError(f"adminCidrs together open SSH to nearly everyone ({'; '.join(wide)}); "
                         "set allowSshFromAnywhere: true if that is really meant")
    seen: set[str] = set()
    for raw in settings.admin_cidrs:
        net = ipaddress.ip_network(raw, strict=False)  # AWS wants the network address
        cidr = str(net)
        if cidr in seen:
            continue
        seen.add(cidr)
        rules.append(IngressRule(f"ssh-{_slug(cidr)}", SSH_PORT, cidr, net.version == 6, f"SSH from admin {cidr}"))
    return rules


def pick_subnet(subnets: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """The subnet (id, availability zone) to use among candidates: the first AZ by name.

    Sorting by zone name then id keeps the choice stable when AWS adds zones or subnets
    later (new zones get later letters), so the instance and its data volume stay put.
    """
    ordered = sorted(subnets, key=lambda s: (s[1], s[0]))
    if not ordered:
        raise ValueError("no public subnet found in the VPC; set subnetId (and vpcId) in the stack")
    return ordered[0]


def check_architecture(existing: Sequence[tuple[str, str, str]], sizing: Sizing) -> None:
    """Refuse a sizing whose architecture differs from the running instance's.

    `existing` lists (instance id, type, architecture) of this stack's live instances.
    The AMI is ignored after creation, so switching e.g. arm64 -> x86_64 would try to
    run an arm64 image on an x86 type: AWS refuses the modification and leaves the
    instance stopped. The fix is to keep the architecture: set `arch` in the stack.
    """
    for instance_id, instance_type, arch in existing:
        if arch and arch != sizing.arch:
            raise ArchitectureChangeError(
                f"the stack's instance {instance_id} is {instance_type} ({arch}) but the sizing now picks "
                f"{sizing.instance_type} ({sizing.arch}). An instance cannot change architecture in place "
                f"(its Ubuntu image is {arch}). Set `pulumi config set arch {arch}` to stay on {arch} "
                f"(recommended for every production stack), or migrate to a new server deliberately."
            )


def instance_tags(settings: Settings, sizing: Sizing) -> dict[str, str]:
    """The instance's own tags (the project's are added by components.tagging); the policy
    pack reads Users/UsersPerWorker to check the type."""
    return {
        "Name": f"odoo-{settings.stack}",
        "Role": "odoo",
        "Users": str(sizing.users),
        "UsersPerWorker": str(sizing.users_per_worker),
        "Workers": str(sizing.workers),
        "Arch": sizing.arch,
    }


def assume_role_policy() -> str:
    """Trust policy letting EC2 instances take the role."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }],
    })


# --- the backups' bucket ------------------------------------------------------------------------


def bucket_name_prefix(s: Settings) -> str:
    """`odoo-backups-<stack>-`: lowercase, S3-safe, at most 37 characters."""
    slug = re.sub(r"[^a-z0-9-]+", "-", s.stack.lower()).strip("-") or "stack"
    head = "odoo-backups-"
    return head + slug[: BUCKET_PREFIX_MAX - len(head) - 1].rstrip("-") + "-"


def upload_policy(bucket_arn: str, prefix: str, kms_key_arn: Optional[str] = None) -> dict[str, Any]:
    """What the instance role may do with the bucket: create objects under the stack's
    prefix, and only new ones.

    PutObject is allowed when the request says If-None-Match (S3 then refuses a key that
    exists), or when it creates no object by itself (CreateMultipartUpload, UploadPart:
    the upload's completion carries the header). With a customer-managed key, the role
    may encrypt with it (GenerateDataKey; Decrypt, which S3 needs to complete a multipart
    upload): it still cannot read a backup, having no s3:GetObject.
    """
    if not prefix.endswith("/") or prefix.startswith("/") or "*" in prefix:
        raise ValueError(f"backup prefix {prefix!r}: expected 'name/'")
    objects = [f"{bucket_arn}/{prefix}*"]
    statements: list[dict[str, Any]] = [
        {"Sid": "CreateNewBackupObjectsOnly", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": objects, "Condition": {"Null": {"s3:if-none-match": "false"}}},
        {"Sid": "UploadPartsOfNewBackups", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": objects, "Condition": {"Bool": {"s3:ObjectCreationOperation": "false"}}},
        {"Sid": "AbortUnfinishedUploads", "Effect": "Allow", "Action": ["s3:AbortMultipartUpload"],
         "Resource": objects},
    ]
    if kms_key_arn:
        statements.append({"Sid": "EncryptWithTheBackupKey", "Effect": "Allow",
                           "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": [kms_key_arn]})
    return {"Version": "2012-10-17", "Statement": statements}


def tls_only_policy(bucket_arn: str, prefix: Optional[str] = None) -> dict[str, Any]:
    """Bucket policy: every request without TLS is denied; with the backups' prefix, also
    every creation of an object there without If-None-Match (write-once, for everyone:
    the bucket itself refuses to replace a backup, whatever an identity policy allows)."""
    statements: list[dict[str, Any]] = [{
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]
    if prefix is not None:
        statements.append({
            "Sid": "DenyReplacingBackups",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": [f"{bucket_arn}/{prefix}*"],
            "Condition": {"Null": {"s3:if-none-match": "true"}, "Bool": {"s3:ObjectCreationOperation": "true"}},
        })
    return {"Version": "2012-10-17", "Statement": statements}


def encryption_default(s: Settings) -> dict[str, Any]:
    """The bucket's default encryption: SSE-S3, or SSE-KMS with the stack's own key."""
    if s.backup_kms_key_arn:
        return {"sse_algorithm": "aws:kms", "kms_master_key_id": s.backup_kms_key_arn}
    return {"sse_algorithm": SSE_ALGORITHM}


def data_volume_target_tags(s: Settings) -> dict[str, str]:
    """The tag that finds this stack's data volume (AwsServer names it odoo-<stack>-data)."""
    return {"Name": f"odoo-{s.stack}-data"}


def dlm_text(text: str) -> str:
    """DLM descriptions and names allow only [0-9A-Za-z _-]."""
    return re.sub(r"[^0-9A-Za-z _-]", "-", text)[:500]


def service_trust_policy(service: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })
