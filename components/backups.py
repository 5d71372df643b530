"""The AWS side of the backups: the stack's S3 bucket, the server's right to write to
it, and (optionally) daily EBS snapshots of the data volume.

`Backups` (`odoo:aws:Backups`) creates:

- an S3 bucket that outlives the stack (retained on delete, protected in production,
  never force-destroyed), private (the four public-access blocks, ACLs disabled, TLS
  only), versioned, encrypted at rest (SSE-S3), whose lifecycle rule expires backups
  and their old versions after `backupRetentionDays` and aborts unfinished uploads;
- an inline policy on the instance role allowing only `s3:PutObject` of new objects
  (If-None-Match) and `s3:AbortMultipartUpload` under `<stack>/`, and a bucket policy
  that denies any object creation there without If-None-Match: backups are write-once,
  the server can add them but never read, list, replace or delete them (issue 11.14:
  chosen over S3 Object Lock, which only a new bucket can have and which still lets a
  writer hide a backup behind a newer version);
- SSE-S3 encryption, or SSE-KMS with the customer-managed key `backupKmsKeyArn`;
- with `ebsSnapshots`, a Data Lifecycle Manager policy (and its service role) taking a
  daily snapshot of the data volume, found by its Name tag, kept `backupRetentionDays`.

The decisions (the bucket's name, its policies, the encryption) live in
odoo_pulumi/aws.py, without Pulumi; `odoo_pulumi/backup.py` renders what the server
needs from the bucket name and region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_aws as aws

from components.tagging import tagged
from odoo_pulumi.aws import (bucket_name_prefix, data_volume_target_tags, dlm_text, encryption_default,
                             service_trust_policy, tls_only_policy, upload_policy)
from odoo_pulumi.backup import backup_prefix
from odoo_pulumi.settings import Settings

TYPE_TOKEN = "odoo:aws:Backups"

# Parts of an upload that died (a server stopped mid-backup) are removed after this.
ABORT_INCOMPLETE_UPLOAD_DAYS = 2
DLM_SERVICE_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
SNAPSHOT_TIME = "03:00"  # UTC (DLM's clock), after the nightly odoo-backup


def lifecycle_rules(s: Settings) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """Backups expire after backupRetentionDays; so do versions they replaced (and the
    delete markers left once nothing is behind them); dead multipart uploads go."""
    prefix = backup_prefix(s)
    days = s.backup_retention_days
    return [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-backups",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=days),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=ABORT_INCOMPLETE_UPLOAD_DAYS),
        ),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="remove-expired-delete-markers",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
        ),
    ]


# --- the component -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupsArgs:
    """settings: the stack (target aws); role_name: the instance role (AwsServer.role.name)."""

    settings: Settings
    role_name: pulumi.Input[str]

    def __post_init__(self) -> None:
        if self.settings.target != "aws":
            raise ValueError(f"Backups is for target=aws (stack {self.settings.stack!r} has "
                             f"target={self.settings.target!r}; host backs up to backupDestination)")
        if self.role_name is None:
            raise ValueError("Backups needs the instance role's name")


class Backups(pulumi.ComponentResource):
    """The stack's backup bucket, the server's upload right, and optional EBS snapshots."""

    bucket: aws.s3.Bucket
    bucket_name: pulumi.Output[str]
    region: pulumi.Output[str]
    prefix: str
    upload_policy: aws.iam.RolePolicy
    snapshot_policy: Optional[aws.dlm.LifecyclePolicy]

    def __init__(self, name: str, args: BackupsArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, tagged(args.settings, opts))
        s = args.settings
        self._prefix = name
        self.prefix = backup_prefix(s)
        self.bucket = self._bucket(s)
        self.upload_policy = self._upload_right(s, args.role_name)
        self.snapshot_policy = self._snapshots(s) if s.ebs_snapshots else None

        self.bucket_name = self.bucket.bucket
        self.region = self.bucket.bucket_region
        self.register_outputs({
            "bucket_name": self.bucket_name,
            "bucket_arn": self.bucket.arn,
            "region": self.region,
            "prefix": self.prefix,
            "url": self.bucket_name.apply(lambda b: f"s3://{b}/{self.prefix}"),
            "snapshot_policy_id": self.snapshot_policy.id if self.snapshot_policy else None,
        })

    def _kept(self, s: Settings, **extra: Any) -> pulumi.ResourceOptions:
        """The bucket and its settings outlive the stack: `pulumi destroy` forgets them
        (empty and delete the bucket by hand to remove the backups); production protects
        them from any replace or delete."""
        return pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=s.production, **extra)

    def _bucket(self, s: Settings) -> aws.s3.Bucket:
        """The bucket: private, TLS only and write-once; versioned, encrypted, expiring."""
        bucket = aws.s3.Bucket(
            f"{self._prefix}-bucket",
            bucket_prefix=bucket_name_prefix(s),
            force_destroy=False,
            tags={"Name": f"odoo-{s.stack}-backups", "Role": "backups"},
            opts=self._kept(s),
        )
        self._lock_down(s, bucket)
        self._retention(s, bucket)
        return bucket

    def _lock_down(self, s: Settings, bucket: aws.s3.Bucket) -> None:
        """No public access, no ACLs, and a bucket policy: TLS only, backups never replaced."""
        name = self._prefix
        public = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._kept(s),
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=self._kept(s),
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(tls_only_policy(arn, self.prefix))),
            # After the public-access block, so that S3 checks the policy against it.
            opts=self._kept(s, depends_on=[public]),
        )

    def _retention(self, s: Settings, bucket: aws.s3.Bucket) -> None:
        """Versions kept, encryption at rest, expiry after backupRetentionDays."""
        name = self._prefix
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=self._kept(s),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=(
                    aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        **encryption_default(s))),
                # With a KMS key, one data key per bucket instead of one KMS call per object.
                bucket_key_enabled=True if s.backup_kms_key_arn else None,
            )],
            opts=self._kept(s),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id, rules=lifecycle_rules(s), opts=self._kept(s),
        )

    def _upload_right(self, s: Settings, role_name: pulumi.Input[str]) -> aws.iam.RolePolicy:
        """The server's right to add backups (and nothing else) under the stack's prefix."""
        return aws.iam.RolePolicy(
            f"{self._prefix}-upload",
            role=role_name,
            policy=self.bucket.arn.apply(lambda arn: json.dumps(upload_policy(arn, self.prefix, s.backup_kms_key_arn))),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _snapshots(self, s: Settings) -> aws.dlm.LifecyclePolicy:
        """Daily snapshots of the data volume by Data Lifecycle Manager, and its role."""
        name, child = self._prefix, pulumi.ResourceOptions(parent=self)
        dlm_role = aws.iam.Role(
            f"{name}-dlm-role",
            assume_role_policy=service_trust_policy("dlm.amazonaws.com"),
            description=f"odoo-pulumi {s.stack}: Data Lifecycle Manager snapshots of the data volume",
            tags={"Role": "backups"},
            opts=child,
        )
        dlm_attach = aws.iam.RolePolicyAttachment(
            f"{name}-dlm-service", role=dlm_role.name, policy_arn=DLM_SERVICE_POLICY_ARN, opts=child,
        )
        return aws.dlm.LifecyclePolicy(
            f"{name}-snapshots",
            description=dlm_text(f"odoo-pulumi {s.stack} daily snapshots of the data volume"),
            execution_role_arn=dlm_role.arn,
            state="ENABLED",
            policy_details=aws.dlm.LifecyclePolicyPolicyDetailsArgs(
                policy_type="EBS_SNAPSHOT_MANAGEMENT",
                resource_types=["VOLUME"],
                target_tags=data_volume_target_tags(s),
                schedules=[aws.dlm.LifecyclePolicyPolicyDetailsScheduleArgs(
                    name="daily",
                    create_rule=aws.dlm.LifecyclePolicyPolicyDetailsScheduleCreateRuleArgs(
                        interval=24, interval_unit="HOURS", times=SNAPSHOT_TIME),
                    retain_rule=aws.dlm.LifecyclePolicyPolicyDetailsScheduleRetainRuleArgs(
                        interval=s.backup_retention_days, interval_unit="DAYS"),
                    copy_tags=True,
                    tags_to_add={"SnapshotCreator": "odoo-pulumi-dlm", "Stack": s.stack},
                )],
            ),
            tags={"Role": "backups"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[dlm_attach]),
        )
