"""Resizing keeps the server and its data: proof by diffing mocked builds.

An operator changes `users` (or moves a stack from the small profile to the large one)
and runs `pulumi up`. That must stop, modify and start the same instance, never
replace it, and never touch the data volume or its attachment. Under mocks each
setting is built, every resource's inputs are captured by logical name, and any two
builds are diffed: each changed instance input must be one AWS updates in place.

The replace-forcing list below is terraform-provider-aws's `ec2_instance.go` (the
attributes marked ForceNew, which pulumi-aws inherits), as summarised in
/work/shared/notes/pulumi-facts.md, spelled as Pulumi's camelCase input names.
"""

from __future__ import annotations

import itertools

import pytest

from odoo_pulumi import sizing as sizing_mod
from odoo_pulumi.settings import load_settings, read_stack_file, sizing_for
from tests.aws_mocks import SECRETS, build, stack_settings

INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"
ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment"

# terraform-provider-aws internal/service/ec2/ec2_instance.go: ForceNew attributes.
REPLACE_FORCING_INSTANCE_INPUTS = (
    "ami",
    "availabilityZone",
    "subnetId",
    "keyName",
    "privateIp",
    "secondaryPrivateIps",
    "associatePublicIpAddress",
    "securityGroups",  # by name (EC2-Classic style); vpcSecurityGroupIds updates in place
    "tenancy",
    "placementGroup",
    "placementGroupId",
    "placementPartitionNumber",
    "hostId",
    "hostResourceGroupArn",
    "cpuOptions",
    "hibernation",
    "ebsOptimized",
    "ipv6AddressCount",
    "ipv6Addresses",
    "enablePrimaryIpv6",
    "launchTemplate",
    "networkInterfaces",
    "primaryNetworkInterface",
    "enclaveOptions",
    "instanceMarketOptions",
    "ephemeralBlockDevices",
    "ebsBlockDevices",  # every field of every extra device
    "rootBlockDevice.encrypted",
    "rootBlockDevice.kmsKeyId",
    "rootBlockDevice.deviceName",
    "userDataReplaceOnChange",
)
# user_data replaces the instance only together with user_data_replace_on_change=true.
USER_DATA = ("userData", "userDataBase64")

# What a change of users may touch on the instance, and nothing more.
USERS_DRIVEN_INSTANCE_INPUTS = {"instanceType", "tags.Users", "tags.Workers"}

# aws_ebs_volume's ForceNew attributes; `size` grows in place (ModifyVolume).
REPLACE_FORCING_VOLUME_INPUTS = ("availabilityZone", "encrypted", "kmsKeyId", "snapshotId", "outpostArn")


def _catalogue_boundaries(arch: str = "any") -> list[int]:
    """Users counts on both sides of every change of instance type, plus the extremes."""
    top = sizing_mod.max_users()
    picks = {1, top}
    prev = sizing_mod.size(1, arch=arch).instance_type
    for users in range(2, top + 1):
        now = sizing_mod.size(users, arch=arch).instance_type
        if now != prev:
            picks |= {users - 1, users}
        prev = now
    return sorted(picks)


USERS_SAMPLE = sorted(set(_catalogue_boundaries()) | {15, 60, 150})


_MISSING = object()


def changed_paths(a, b, prefix: str = "") -> list[str]:
    """Dotted paths of the inputs that differ between two builds (dicts recurse)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += changed_paths(a.get(key, _MISSING), b.get(key, _MISSING), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _forcing(path: str, forcing: tuple[str, ...]) -> bool:
    return any(path == f or path.startswith(f + ".") for f in forcing)


def instance_replacements(old, new) -> list[str]:
    """Changed instance inputs that would replace the instance (ignored inputs excepted)."""
    inst_old, inst_new = old.one(INSTANCE), new.one(INSTANCE)
    ignored = set(inst_new.ignore_changes)
    out = []
    for path in changed_paths(inst_old.inputs, inst_new.inputs):
        top = path.split(".")[0]
        if top in ignored:
            continue
        if _forcing(path, REPLACE_FORCING_INSTANCE_INPUTS):
            out.append(path)
        elif top in USER_DATA and inst_new.inputs.get("userDataReplaceOnChange"):
            out.append(path)
    return out


def architecture_of(b) -> str:
    """The architecture the build's AMI lookup asked for ("" when the AMI is pinned)."""
    calls = b.invokes("aws:ec2/getAmi:getAmi")
    if not calls:
        return ""
    return next(f["values"][0] for f in calls[0]["filters"] if f["name"] == "architecture")


def architecture_flip(old, new) -> str | None:
    """Why the move would switch CPU architecture, or None.

    `ami` is in ignore_changes, so such a flip would not show as a replacement: it would
    keep the old image on a type of the other architecture. It must be caught here.
    """
    a, b = architecture_of(old), architecture_of(new)
    if a != b:
        return f"AMI architecture {a} -> {b}"
    ta, tb = old.one(INSTANCE).inputs["tags"]["Arch"], new.one(INSTANCE).inputs["tags"]["Arch"]
    if ta != tb:
        return f"instance type architecture {ta} -> {tb}"
    return None


@pytest.fixture(scope="module")
def users_builds():
    """The small stack built for every sampled users count."""
    return {u: build(stack_settings("small", users=u)) for u in USERS_SAMPLE}


def test_sample_covers_every_instance_type_of_the_catalogue_path():
    """The sample includes both sides of every type change, so each resize step is tried."""
    types = {sizing_mod.size(u).instance_type for u in USERS_SAMPLE}
    every = {sizing_mod.size(u).instance_type for u in range(1, sizing_mod.max_users() + 1)}
    assert types == every
    assert len(every) >= 5


def test_users_changes_never_replace_the_instance(users_builds):
    """Any users -> users move changes only in-place instance inputs (type and tags)."""
    problems = []
    for a, b in itertools.permutations(USERS_SAMPLE, 2):
        old, new = users_builds[a], users_builds[b]
        replaced = instance_replacements(old, new)
        if replaced:
            problems.append(f"users {a} -> {b}: replace-forcing inputs changed: {replaced}")
        changed = set(changed_paths(old.one(INSTANCE).inputs, new.one(INSTANCE).inputs))
        extra = changed - USERS_DRIVEN_INSTANCE_INPUTS
        if extra:
            problems.append(f"users {a} -> {b}: unexpected instance inputs changed: {sorted(extra)}")
    assert not problems, "\n".join(problems)


def test_users_changes_never_touch_the_data(users_builds):
    """The data volume and its attachment are identical, inputs and options, for every users count."""
    first = users_builds[USERS_SAMPLE[0]]
    for users, b in users_builds.items():
        for typ in (VOLUME, ATTACHMENT):
            old, new = first.one(typ), b.one(typ)
            assert changed_paths(old.inputs, new.inputs) == [], f"users {users}: {typ} inputs changed"
            assert (old.protect, old.retain_on_delete, old.ignore_changes) == (
                new.protect, new.retain_on_delete, new.ignore_changes), f"users {users}: {typ} options changed"
        assert set(b.resources) == set(first.resources), f"users {users}: resources added or removed"


def test_users_changes_never_flip_the_architecture(users_builds):
    """Every sampled users count asks for the same AMI architecture as every other."""
    flips = [f"users {a} -> {b}: {why}"
             for a, b in itertools.combinations(USERS_SAMPLE, 2)
             if (why := architecture_flip(users_builds[a], users_builds[b]))]
    assert not flips, (
        "a users change would switch CPU architecture (the AMI is ignored after creation, so the "
        "instance would keep the old image): " + "; ".join(flips)
    )


@pytest.mark.parametrize("arch", ["any", "x86_64", "arm64"])
@pytest.mark.parametrize("users_per_worker", [1, 3, 6, 12])
def test_sizing_keeps_one_architecture_over_all_users(arch, users_per_worker):
    """Over 1..max users the sizing stays on one architecture for each arch setting.

    The catalogue's prices decide this for arch=any; a price change that made x86 the
    cheapest at some size would make a users change flip the architecture. That must
    fail here (and AwsServer refuses such a flip on a live stack).
    """
    archs = {}
    for users in range(1, sizing_mod.max_users(users_per_worker) + 1):
        s = sizing_mod.size(users, users_per_worker=users_per_worker, arch=arch)
        archs.setdefault(s.arch, users)
    assert len(archs) == 1, f"arch={arch}: the sizing switches architecture at users {archs}"


def test_the_flip_detector_sees_a_flip():
    """The detector is not vacuous: x86 after arm64 is reported (as a catalogue change would do)."""
    arm = build(stack_settings("small", users=60))
    x86 = build(stack_settings("small", users=60, arch="x86_64"))
    assert architecture_flip(arm, x86) == "AMI architecture arm64 -> x86_64"
    assert architecture_flip(arm, arm) is None
    # The AMI change itself is hidden by ignore_changes: only the detector catches it.
    assert "ami" in changed_paths(arm.one(INSTANCE).inputs, x86.one(INSTANCE).inputs)
    assert instance_replacements(arm, x86) == []


def test_the_replacement_detector_sees_a_replacement():
    """The diff is not vacuous: moving the subnet (a ForceNew input) is reported."""
    base = build(stack_settings("small"))
    other_zone = {"subnet-0fffffffffffffff9": ("eu-west-1b", "vpc-0d0d0d0d0d0d0d0d0")}
    moved = build(stack_settings("small", subnetId="subnet-0fffffffffffffff9"), subnets=other_zone)
    assert instance_replacements(base, moved) == ["subnetId"]
    assert changed_paths(base.one(VOLUME).inputs, moved.one(VOLUME).inputs) == ["availabilityZone"]


def _profile_switch(stack: str, profile: str, keys: tuple[str, ...] | None = None):
    """Settings of `stack` with the `profile` stack file's values (all, or only `keys`)."""
    raw = read_stack_file(stack)
    other = read_stack_file(profile)
    raw.update(other if keys is None else {k: other[k] for k in keys if k in other})
    return load_settings(raw, stack, secrets_present=set(SECRETS))


SIZING_KEYS = ("users", "usersPerWorker", "instanceType", "arch", "limitTimeCpu", "limitTimeReal")


def test_small_to_large_sizing_resizes_in_place():
    """The small stack taking the large profile's sizing: a type change only, data untouched."""
    small = build(stack_settings("small"))
    large = build(_profile_switch("small", "large", SIZING_KEYS))
    assert small.one(INSTANCE).inputs["instanceType"] != large.one(INSTANCE).inputs["instanceType"]
    assert instance_replacements(small, large) == []
    assert set(changed_paths(small.one(INSTANCE).inputs, large.one(INSTANCE).inputs)) <= USERS_DRIVEN_INSTANCE_INPUTS
    assert architecture_flip(small, large) is None
    for typ in (VOLUME, ATTACHMENT):
        assert changed_paths(small.one(typ).inputs, large.one(typ).inputs) == []


def test_small_to_large_whole_profile_updates_in_place():
    """The small stack taking every value of the large file still keeps instance and data.

    Beyond the type, the root volume grows, termination protection turns on, and the
    data volume grows (ModifyVolume, in place). The new public key replaces the key pair,
    but the instance ignores key_name after creation, so it stays.
    """
    small = build(stack_settings("small"))
    large = build(_profile_switch("small", "large"))
    assert instance_replacements(small, large) == []
    changed = set(changed_paths(small.one(INSTANCE).inputs, large.one(INSTANCE).inputs))
    assert {"instanceType", "rootBlockDevice.volumeSize", "disableApiTermination", "keyName"} <= changed
    assert "keyName" in large.one(INSTANCE).ignore_changes
    assert architecture_flip(small, large) is None

    vol_changes = changed_paths(small.one(VOLUME).inputs, large.one(VOLUME).inputs)
    assert vol_changes == ["size"]
    assert not any(_forcing(p, REPLACE_FORCING_VOLUME_INPUTS) for p in vol_changes)
    assert large.one(VOLUME).inputs["size"] > small.one(VOLUME).inputs["size"], "EBS volumes only grow"
    assert large.one(VOLUME).protect and large.one(VOLUME).retain_on_delete
    assert changed_paths(small.one(ATTACHMENT).inputs, large.one(ATTACHMENT).inputs) == []


def test_the_stack_files_agree_on_architecture():
    """small and large size to the same architecture, so a profile switch is a plain resize."""
    assert sizing_for(stack_settings("small")).arch == sizing_for(stack_settings("large")).arch
