"""Backups (odoo:aws:Backups) under Pulumi mocks, next to the AwsServer it serves.

The AWS provider cannot run here: these tests check every request the component makes
(the bucket and each of its settings, the policy on the instance role, the optional
snapshot policy) and its resource options, for the small stack (no snapshots, not
production) and the large one (snapshots, production).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pulumi
import pytest

from odoo_pulumi import backup
from components.server import AwsServer, AwsServerArgs
from components.backups import DLM_SERVICE_POLICY_ARN, Backups, BackupsArgs
from odoo_pulumi.aws import bucket_name_prefix, upload_policy
from odoo_pulumi.settings import sizing_for
from tests.aws_mocks import PROJECT, FakeAws, Recorded, RecordingMonitor, stack_settings
from tests.conftest import host_settings

BUCKET = "aws:s3/bucket:Bucket"
REGION = "eu-west-1"


class FakeAwsWithS3(FakeAws):
    """FakeAws, plus what AWS answers for a bucket (its generated name, ARN, region)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        rid, state = super().new_resource(args)
        if args.typ == BUCKET:
            name = args.inputs["bucketPrefix"] + "20250101abcdef"
            state.update(bucket=name, arn=f"arn:aws:s3:::{name}", bucketRegion=REGION)
            rid = name
        elif args.typ == "aws:dlm/lifecyclePolicy:LifecyclePolicy":
            rid = "policy-0123456789abcdef0"
        return rid, state


def build(settings) -> dict[str, Any]:
    """AwsServer and Backups (on the server's role) under mocks: resources by name,
    the component outputs, and the server's data volume tags."""
    mocks = FakeAwsWithS3()
    monitor = RecordingMonitor(mocks)
    logger = logging.getLogger(f"backup-mocks-{id(mocks)}")
    logger.propagate = False
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=settings.stack, preview=False,
                             monitor=monitor, logger=logger)
    out: dict[str, Any] = {}

    @pulumi.runtime.test
    def run():
        server = AwsServer("server", AwsServerArgs(settings, sizing_for(settings)))
        b = Backups("backups", BackupsArgs(settings=settings, role_name=server.role.name))
        out["prefix"] = b.prefix
        out["has_snapshots"] = b.snapshot_policy is not None
        return pulumi.Output.all(b.bucket_name, b.region, server.role.name).apply(
            lambda v: out.update(bucket_name=v[0], region=v[1], role_name=v[2]))

    run()
    resources = {}
    for name, opt in monitor.options.items():
        if opt["type"] in ("pulumi:pulumi:Stack",):
            continue
        resources[name] = Recorded(type=opt["type"], inputs=mocks.inputs.get(name, {}), protect=opt["protect"],
                                   retain_on_delete=opt["retain_on_delete"], ignore_changes=opt["ignore_changes"],
                                   parent=opt["parent"], urn=opt["urn"])
    out["resources"] = resources
    return out


def of_type(b, typ: str) -> dict[str, Recorded]:
    return {n: r for n, r in b["resources"].items() if r.type == typ}


def one(b, typ: str) -> Recorded:
    found = list(of_type(b, typ).values())
    assert len(found) == 1, f"expected one {typ}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def builds():
    return {stack: build(stack_settings(stack)) for stack in ("small", "large")}


def test_bucket_is_named_for_the_stack_and_never_force_destroyed(builds):
    """A generated name starting odoo-backups-<stack>-, force_destroy off, tagged."""
    for stack, b in builds.items():
        bucket = one(b, BUCKET)
        assert bucket.inputs["bucketPrefix"] == f"odoo-backups-{stack}-"
        assert bucket.inputs["forceDestroy"] is False
        assert bucket.inputs["tags"] == {"Project": "odoo-pulumi", "Stack": stack, "ManagedBy": "pulumi",
                                         "Role": "backups", "Name": f"odoo-{stack}-backups"}
        assert b["bucket_name"].startswith(f"odoo-backups-{stack}-")
        assert b["region"] == REGION and b["prefix"] == f"{stack}/"


def test_bucket_and_its_settings_outlive_the_stack_and_are_protected_in_production(builds):
    """Every bucket resource is retained on delete; production (large) protects them all."""
    for stack, b in builds.items():
        s3 = {n: r for n, r in b["resources"].items() if r.type.startswith("aws:s3/")}
        assert len(s3) == 7, sorted(s3)
        for name, r in s3.items():
            assert r.retain_on_delete, f"{name} would be deleted by pulumi destroy"
            assert r.protect is (stack == "large"), f"{name}: protect={r.protect} in {stack}"


def test_public_access_fully_blocked_and_acls_off(builds):
    """All four public-access blocks, BucketOwnerEnforced, requests without TLS denied."""
    b = builds["small"]
    bucket_id = one(b, BUCKET).inputs["bucketPrefix"] + "20250101abcdef"
    pab = one(b, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert {k: pab[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                "restrictPublicBuckets")} == dict.fromkeys(
        ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)
    assert pab["bucket"] == bucket_id
    own = one(b, "aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert own["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    policy = json.loads(one(b, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    st, write_once = policy["Statement"]
    assert write_once["Sid"] == "DenyReplacingBackups"  # see test_backups_are_write_once
    assert st["Effect"] == "Deny" and st["Action"] == "s3:*"
    assert st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert st["Resource"] == [f"arn:aws:s3:::{bucket_id}", f"arn:aws:s3:::{bucket_id}/*"]


def test_versioning_and_encryption(builds):
    """Versioning Enabled; SSE-S3 (AES256) by default."""
    b = builds["small"]
    v = one(b, "aws:s3/bucketVersioning:BucketVersioning").inputs
    assert v["versioningConfiguration"] == {"status": "Enabled"}
    e = one(b, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs
    assert e["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]


@pytest.mark.parametrize("stack, days", [("small", 30), ("large", 90)])
def test_lifecycle_expires_after_the_retention(builds, stack, days):
    """Backups and the versions they replaced expire after backupRetentionDays (30 by
    default, 90 in the large stack), under the stack's prefix; dead uploads after 2 days;
    delete markers with nothing behind them are removed."""
    rules = {r["id"]: r for r in one(builds[stack], "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
             .inputs["rules"]}
    assert set(rules) == {"expire-backups", "remove-expired-delete-markers"}
    main = rules["expire-backups"]
    assert main["status"] == "Enabled"
    assert main["filter"] == {"prefix": f"{stack}/"}
    assert main["expiration"] == {"days": days}
    assert main["noncurrentVersionExpiration"] == {"noncurrentDays": days}
    assert main["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 2}
    markers = rules["remove-expired-delete-markers"]
    assert markers["expiration"] == {"expiredObjectDeleteMarker": True}
    assert markers["filter"] == {"prefix": f"{stack}/"} and markers["status"] == "Enabled"


def test_instance_role_may_only_put_under_the_stack_prefix(builds):
    """The policy on the instance role: PutObject (new objects only) and
    AbortMultipartUpload on <bucket>/<stack>/* only; no read, list or delete, nothing
    outside the prefix, no KMS right without a KMS key."""
    for stack, b in builds.items():
        rp = one(b, "aws:iam/rolePolicy:RolePolicy")
        assert rp.inputs["role"] == b["role_name"], "attached to the server's role"
        policy = json.loads(rp.inputs["policy"])
        actions = set()
        for st in policy["Statement"]:
            assert st["Effect"] == "Allow"
            assert st["Resource"] == [f"arn:aws:s3:::{b['bucket_name']}/{stack}/*"]
            assert "NotAction" not in st and "NotResource" not in st
            actions |= set(st["Action"])
        assert actions == {"s3:AbortMultipartUpload", "s3:PutObject"}


def test_backups_are_write_once(builds):
    """Issue 11.14: the server may create a backup object only if its key is new
    (If-None-Match: *; multipart parts are exempt, their completion is not), and the
    bucket itself denies, to everyone, creating an object under the prefix without it:
    an existing backup can never be replaced by its server."""
    b = builds["small"]
    arn = f"arn:aws:s3:::{b['bucket_name']}"
    role = json.loads(one(b, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    puts = [st for st in role["Statement"] if "s3:PutObject" in st["Action"]]
    assert {json.dumps(st["Condition"], sort_keys=True) for st in puts} == {
        '{"Null": {"s3:if-none-match": "false"}}', '{"Bool": {"s3:ObjectCreationOperation": "false"}}'}
    bucket_policy = json.loads(one(b, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    deny = next(st for st in bucket_policy["Statement"] if st["Sid"] == "DenyReplacingBackups")
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:PutObject"
    assert deny["Resource"] == [f"{arn}/small/*"]
    assert deny["Condition"] == {"Null": {"s3:if-none-match": "true"}, "Bool": {"s3:ObjectCreationOperation": "true"}}


def test_customer_managed_kms_key():
    """backupKmsKeyArn: SSE-KMS with that key and a bucket key; the role may encrypt with
    it (and nothing else); without the setting, SSE-S3 and no KMS right."""
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    b = build(stack_settings("small", backupKmsKeyArn=key))
    e = one(b, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs
    assert e["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key},
                           "bucketKeyEnabled": True}]
    role = json.loads(one(b, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    kms = [st for st in role["Statement"] if any(a.startswith("kms:") for a in st["Action"])]
    assert kms == [{"Sid": "EncryptWithTheBackupKey", "Effect": "Allow",
                    "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": [key]}]
    from odoo_pulumi.settings import SettingsError
    with pytest.raises(SettingsError, match="setting backupKmsKeyArn='alias/mine' is invalid: expected a KMS key ARN"):
        stack_settings("small", backupKmsKeyArn="alias/mine")


def test_upload_policy_refuses_a_prefix_that_widens_it():
    """A prefix without its trailing slash or with a wildcard would reach other stacks."""
    arn = "arn:aws:s3:::b"
    assert upload_policy(arn, "prod/")["Statement"][0]["Resource"] == ["arn:aws:s3:::b/prod/*"]
    for bad in ("prod", "", "/prod/", "pr*/"):
        with pytest.raises(ValueError):
            upload_policy(arn, bad)


def test_snapshots_only_when_enabled(builds):
    """small (ebsSnapshots off): no DLM policy and no DLM role; large: one of each."""
    small, large = builds["small"], builds["large"]
    assert not of_type(small, "aws:dlm/lifecyclePolicy:LifecyclePolicy") and not small["has_snapshots"]
    assert [n for n in of_type(small, "aws:iam/role:Role")] == ["server-role"]
    assert large["has_snapshots"]
    roles = of_type(large, "aws:iam/role:Role")
    assert sorted(roles) == ["backups-dlm-role", "server-role"]
    trust = json.loads(roles["backups-dlm-role"].inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "dlm.amazonaws.com"}
    attach = [r for r in of_type(large, "aws:iam/rolePolicyAttachment:RolePolicyAttachment").values()
              if r.inputs["policyArn"] == DLM_SERVICE_POLICY_ARN]
    assert len(attach) == 1
    s = stack_settings("small", ebsSnapshots=True)
    assert build(s)["has_snapshots"], "the setting alone turns them on"


def test_snapshot_policy_targets_the_data_volume_daily(builds):
    """Daily at 03:00 UTC, kept backupRetentionDays, tags copied, targeting a tag the
    server's data volume really carries (and the root volume does not)."""
    b = builds["large"]
    p = one(b, "aws:dlm/lifecyclePolicy:LifecyclePolicy").inputs
    assert p["state"] == "ENABLED"
    assert p["executionRoleArn"].endswith("backups-dlm-role-1234567")
    d = p["policyDetails"]
    assert d["policyType"] == "EBS_SNAPSHOT_MANAGEMENT" and d["resourceTypes"] == ["VOLUME"]
    (sched,) = d["schedules"]
    assert sched["createRule"] == {"interval": 24, "intervalUnit": "HOURS", "times": "03:00"}
    assert sched["retainRule"] == {"interval": 90, "intervalUnit": "DAYS"}
    assert sched["copyTags"] is True
    volume_tags = one(b, "aws:ebs/volume:Volume").inputs["tags"]
    assert d["targetTags"].items() <= volume_tags.items(), (d["targetTags"], volume_tags)
    root_tags = one(b, "aws:ec2/instance:Instance").inputs["rootBlockDevice"]["tags"]
    assert not d["targetTags"].items() <= root_tags.items()
    assert all(c.isalnum() or c in " _-" for c in p["description"])


def test_children_of_the_component(builds):
    """Every backup resource is a child of odoo:aws:Backups."""
    b = builds["large"]
    comp = [r for r in b["resources"].values() if r.type == "odoo:aws:Backups"]
    assert len(comp) == 1
    for name, r in b["resources"].items():
        if name.startswith("backups-"):
            assert r.parent == comp[0].urn, name


def test_server_files_follow_the_bucket(builds):
    """The bucket name and region from the component give the server's destination."""
    b = builds["small"]
    s = stack_settings("small")
    conf = backup.server_files(s, bucket=b["bucket_name"], region=b["region"])["backup.conf"].content
    assert f"DESTINATION=s3://{b['bucket_name']}/small/" in conf and "S3_REGION=eu-west-1" in conf


def test_backups_is_for_aws_only():
    """target host has no bucket: the component refuses it."""
    with pytest.raises(ValueError, match="target=aws"):
        BackupsArgs(settings=host_settings(), role_name="r")


@pytest.mark.parametrize("stack, want", [
    ("prod", "odoo-backups-prod-"),
    ("My_Stack.eu", "odoo-backups-my-stack-eu-"),
    ("a-very-long-stack-name-for-a-big-office", "odoo-backups-a-very-long-stack-name-"),
])
def test_bucket_prefix_is_s3_safe(stack, want):
    """Lowercase, [a-z0-9-], at most 37 characters, ending with '-'."""
    s = host_settings()
    s = type(s)(**{**s.__dict__, "stack": stack})
    got = bucket_name_prefix(s)
    assert got == want and len(got) <= 37
