"""AwsServer under Pulumi mocks: what the small and large stacks would create on AWS.

The AWS provider cannot run here, so these tests check the component's requests:
every resource's inputs and options, the lookups it makes, and its outputs.
"""

from __future__ import annotations

import pytest

from tests.aws_mocks import AMI_BY_ARCH, DEFAULT_VPC, EIP_ADDRESS, build, stack_settings
from components.server import AwsServerArgs
from odoo_pulumi.aws import CANONICAL_OWNER, ArchitectureChangeError, check_architecture, ingress_plan, pick_subnet
from odoo_pulumi.settings import sizing_for

INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"
ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG = "aws:ec2/securityGroup:SecurityGroup"
ZONE_ID = "Z0123456789ABCDEFGHIJ"

STACKS = ("small", "large")


@pytest.fixture(scope="module")
def builds():
    """One build per stack file, shared by the read-only assertions below."""
    return {stack: build(stack_settings(stack)) for stack in STACKS}


def _ingress(b):
    """(port, cidr, family) of every inbound rule, as the security group will hold them."""
    out = set()
    for r in b.of_type(INGRESS).values():
        i = r.inputs
        assert i["fromPort"] == i["toPort"], "a rule opens exactly one port"
        assert i["ipProtocol"] == "tcp"
        cidr = i.get("cidrIpv4") or i.get("cidrIpv6")
        assert not (i.get("cidrIpv4") and i.get("cidrIpv6")), "one family per rule"
        out.add((int(i["fromPort"]), cidr, "ipv6" if i.get("cidrIpv6") else "ipv4"))
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_instance_type_is_the_sizing_choice(builds, stack):
    """The instance type comes from the sizing of the stack's users, nothing else."""
    settings = stack_settings(stack)
    inst = builds[stack].one(INSTANCE)
    assert inst.inputs["instanceType"] == sizing_for(settings).instance_type
    assert builds[stack].outputs["instance_type"] == sizing_for(settings).instance_type
    assert {"small": "t4g.medium", "large": "c7g.4xlarge"}[stack] == inst.inputs["instanceType"]


@pytest.mark.parametrize("stack", STACKS)
def test_ami_is_latest_ubuntu_noble_from_canonical_for_the_arch(builds, stack):
    """The AMI lookup asks Canonical's account for Noble on the sizing's architecture."""
    b = builds[stack]
    arch = sizing_for(stack_settings(stack)).arch
    (call,) = b.invokes("aws:ec2/getAmi:getAmi")
    assert call["owners"] == [CANONICAL_OWNER] == ["099720109477"]
    assert call["mostRecent"] is True
    filters = {f["name"]: f["values"] for f in call["filters"]}
    ubuntu_arch = {"arm64": "arm64", "x86_64": "amd64"}[arch]
    assert filters == {
        "name": [f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{ubuntu_arch}-server-*"],
        "virtualization-type": ["hvm"],
        "architecture": [arch],
    }
    inst = b.one(INSTANCE)
    assert inst.inputs["ami"] == AMI_BY_ARCH[arch]
    assert "ami" in inst.ignore_changes, "a newer AMI must never replace the running server"


def test_x86_arch_looks_up_amd64_images():
    """arch x86_64 picks an x86 type and Canonical's amd64 image name."""
    b = build(stack_settings("small", arch="x86_64"))
    (call,) = b.invokes("aws:ec2/getAmi:getAmi")
    filters = {f["name"]: f["values"] for f in call["filters"]}
    assert filters["name"] == ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
    assert filters["architecture"] == ["x86_64"]
    assert b.one(INSTANCE).inputs["instanceType"] == "t3.medium"
    assert b.one(INSTANCE).inputs["ami"] == AMI_BY_ARCH["x86_64"]


def test_pinned_ami_skips_the_lookup():
    """`ami` in the stack is used as is: no search for the latest image."""
    b = build(stack_settings("small", ami="ami-0123456789abcdef0"))
    assert b.invokes("aws:ec2/getAmi:getAmi") == []
    assert b.one(INSTANCE).inputs["ami"] == "ami-0123456789abcdef0"


def test_small_security_group_rules(builds):
    """Small: 80/443 from the world on both families, 22 from its one admin block only."""
    assert _ingress(builds["small"]) == {
        (80, "0.0.0.0/0", "ipv4"), (80, "::/0", "ipv6"),
        (443, "0.0.0.0/0", "ipv4"), (443, "::/0", "ipv6"),
        (22, "203.0.113.0/24", "ipv4"),
    }


def test_large_security_group_rules_put_ipv6_admins_in_the_ipv6_field(builds):
    """Large: an IPv6 admin block lands in cidr_ipv6, the IPv4 one in cidr_ipv4."""
    assert _ingress(builds["large"]) == {
        (80, "0.0.0.0/0", "ipv4"), (80, "::/0", "ipv6"),
        (443, "0.0.0.0/0", "ipv4"), (443, "::/0", "ipv6"),
        (22, "198.51.100.0/24", "ipv4"), (22, "2001:db8::/32", "ipv6"),
    }


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_else_inbound_and_all_egress(builds, stack):
    """No admin port faces the world; rules attach to the server's group; egress is open."""
    b = builds[stack]
    ports = {p for p, _, _ in _ingress(b)}
    assert ports <= {22, 80, 443}
    assert not ports & {5432, 8069, 8072}
    for port, cidr, _ in _ingress(b):
        if port == 22:
            assert cidr not in ("0.0.0.0/0", "::/0")
    sg = b.one(SG)
    assert sg.inputs["vpcId"] == DEFAULT_VPC
    assert "ingress" not in sg.inputs and "egress" not in sg.inputs, "rules are separate resources only"
    for r in list(b.of_type(INGRESS).values()) + list(b.of_type(EGRESS).values()):
        assert r.inputs["securityGroupId"] == "sg-0123456789abcdef0"
    egress = {(r.inputs["ipProtocol"], r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6"))
              for r in b.of_type(EGRESS).values()}
    assert egress == {("-1", "0.0.0.0/0"), ("-1", "::/0")}
    assert b.one(INSTANCE).inputs["vpcSecurityGroupIds"] == ["sg-0123456789abcdef0"]
    assert b.warnings == []


def test_ssh_from_anywhere_opens_22_to_the_world_and_warns():
    """The opt-in opens 22 on both families instead of the admin blocks, with a warning."""
    b = build(stack_settings("small", allowSshFromAnywhere=True))
    ssh = {(c, f) for p, c, f in _ingress(b) if p == 22}
    assert ssh == {("0.0.0.0/0", "ipv4"), ("::/0", "ipv6")}
    assert any("allowSshFromAnywhere" in w and "0.0.0.0/0" in w for w in b.warnings), b.warnings


def test_admin_cidrs_are_normalised_and_deduplicated():
    """Host bits are cleared (AWS wants network addresses) and duplicates dropped."""
    s = stack_settings("small", adminCidrs=["203.0.113.7/24", "203.0.113.0/24", "2001:db8::1/48"])
    assert [(r.port, r.cidr, r.ipv6) for r in ingress_plan(s) if r.port == 22] == [
        (22, "203.0.113.0/24", False), (22, "2001:db8::/48", True)]


@pytest.mark.parametrize("cidrs", [["0.0.0.0/0"], ["0.0.0.0/1", "128.0.0.0/1"], ["::/1", "8000::/1"],
                                   ["203.0.113.0/24", "2000::/4", "3000::/4"]])
def test_world_admin_cidr_needs_the_explicit_opt_in(cidrs):
    """The whole Internet in adminCidrs, in one block or split in pieces, is refused by
    the settings, and by the security group's own plan for any other caller."""
    import dataclasses
    from odoo_pulumi.settings import SettingsError
    with pytest.raises(SettingsError, match="allowSshFromAnywhere"):
        stack_settings("small", adminCidrs=cidrs)
    s = dataclasses.replace(stack_settings("small"), admin_cidrs=tuple(cidrs))
    with pytest.raises(ValueError, match="allowSshFromAnywhere"):
        ingress_plan(s)


@pytest.mark.parametrize("stack", STACKS)
def test_instance_hardening(builds, stack):
    """IMDSv2 required, encrypted gp3 root of the set size, no user data, profile attached."""
    settings = stack_settings(stack)
    i = builds[stack].one(INSTANCE).inputs
    md = i["metadataOptions"]
    assert md["httpTokens"] == "required"
    assert md["httpEndpoint"] == "enabled"
    assert 1 <= md["httpPutResponseHopLimit"] <= 2
    root = i["rootBlockDevice"]
    assert root["encrypted"] is True
    assert root["volumeType"] == "gp3"
    assert root["volumeSize"] == settings.root_volume_gib
    assert not {"userData", "userDataBase64", "userDataReplaceOnChange", "ebsBlockDevices",
                "associatePublicIpAddress", "availabilityZone"} & set(i)
    assert i["iamInstanceProfile"] == "odoo-profile-1234567"
    assert i["subnetId"] == "subnet-0ccccccccccccccc3"
    assert i["keyName"].startswith("odoo-key-")
    assert i["disableApiTermination"] is settings.production
    assert {"small": False, "large": True}[stack] is i["disableApiTermination"]


@pytest.mark.parametrize("stack", STACKS)
def test_instance_tags(builds, stack):
    """Tags say what the server is and carry the users the policy pack checks the type against."""
    settings = stack_settings(stack)
    sizing = sizing_for(settings)
    tags = builds[stack].one(INSTANCE).inputs["tags"]
    assert tags["Name"] == f"odoo-{stack}"
    assert tags["Project"] == "odoo-pulumi"
    assert tags["Stack"] == stack
    assert tags["ManagedBy"] == "pulumi"
    assert tags["Users"] == str(settings.users)
    assert tags["Workers"] == str(sizing.workers)
    assert tags["UsersPerWorker"] == "6"
    for r in builds[stack].resources.values():
        if "tags" in r.inputs:
            assert r.inputs["tags"]["Project"] == "odoo-pulumi" and r.inputs["tags"]["Stack"] == stack


@pytest.mark.parametrize("stack", STACKS)
def test_data_volume_is_kept_encrypted_and_in_the_instance_zone(builds, stack):
    """The data volume: protected, retained on delete, encrypted gp3, right size, subnet's zone."""
    settings = stack_settings(stack)
    vol = builds[stack].one(VOLUME)
    assert vol.protect is True
    assert vol.retain_on_delete is True
    assert vol.inputs["encrypted"] is True
    assert vol.inputs["type"] == "gp3"
    assert vol.inputs["size"] == settings.data_volume_gib
    # Subnet ids are not in zone order in the fake: the first zone by name wins.
    assert vol.inputs["availabilityZone"] == "eu-west-1a"
    assert vol.inputs["tags"]["Role"] == "data"
    assert builds[stack].outputs["data_volume_id"] == "vol-0123456789abcdef0"


@pytest.mark.parametrize("stack", STACKS)
def test_data_volume_attachment(builds, stack):
    """Attached as /dev/sdf to the instance, the instance stopped before any detach."""
    att = builds[stack].one(ATTACHMENT).inputs
    assert att == {
        "deviceName": "/dev/sdf",
        "volumeId": "vol-0123456789abcdef0",
        "instanceId": "i-0123456789abcdef0",
        "stopInstanceBeforeDetaching": True,
    }


@pytest.mark.parametrize("stack", STACKS)
def test_elastic_ip_is_associated(builds, stack):
    """An Elastic IP in the VPC, associated with the instance, is the public address."""
    b = builds[stack]
    assert b.one("aws:ec2/eip:Eip").inputs["domain"] == "vpc"
    assoc = b.one("aws:ec2/eipAssociation:EipAssociation").inputs
    assert assoc == {"allocationId": "eipalloc-0123456789abcdef0", "instanceId": "i-0123456789abcdef0"}
    assert b.outputs["public_ip"] == EIP_ADDRESS


@pytest.mark.parametrize("stack", STACKS)
def test_no_dns_record_without_a_zone(builds, stack):
    """Without hostedZoneId the operator manages DNS: no record is created."""
    assert builds[stack].of_type("aws:route53/record:Record") == {}


def test_dns_record_with_a_zone():
    """With hostedZoneId and a domain, an A record points the domain at the Elastic IP."""
    b = build(stack_settings("small", hostedZoneId=ZONE_ID))
    rec = b.one("aws:route53/record:Record").inputs
    assert rec["zoneId"] == ZONE_ID
    assert rec["name"] == "erp.small.example.com"
    assert rec["type"] == "A"
    assert rec["records"] == [EIP_ADDRESS]
    assert rec["ttl"] == 300


def test_session_manager_role(builds):
    """The instance profile's role trusts EC2 and has the SSM core policy attached."""
    b = builds["small"]
    role = b.one("aws:iam/role:Role").inputs
    import json
    doc = json.loads(role["assumeRolePolicy"])
    assert doc["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert doc["Statement"][0]["Action"] == "sts:AssumeRole"
    att = b.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs
    assert att == {"role": "odoo-role-1234567",
                   "policyArn": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}
    assert b.one("aws:iam/instanceProfile:InstanceProfile").inputs["role"] == "odoo-role-1234567"


def test_key_pair_from_the_stack(builds):
    """The key pair holds the stack's public key."""
    for stack in STACKS:
        kp = builds[stack].one("aws:ec2/keyPair:KeyPair").inputs
        assert kp["publicKey"] == stack_settings(stack).ssh_public_key


@pytest.mark.parametrize("stack", STACKS)
def test_outputs(builds, stack):
    """The outputs the provisioning and the program's exports need, with their exact form
    (the operator's url, ssh_command and logs_command are the program's exports, built
    once for both targets: tests/test_program_mocks.py)."""
    settings = stack_settings(stack)
    sizing = sizing_for(settings)
    o = builds[stack].outputs
    assert o["public_ip"] == EIP_ADDRESS
    assert o["instance_id"] == "i-0123456789abcdef0"
    assert o["workers"] == sizing.workers
    assert o["sizing_summary"] == sizing.summary


@pytest.mark.parametrize("stack", STACKS)
def test_children_belong_to_the_component(builds, stack):
    """Every resource is a child of the odoo:aws:Server component (named from it)."""
    b = builds[stack]
    assert b.component_urn.endswith("odoo:aws:Server::odoo")
    for name, r in b.resources.items():
        assert r.parent == b.component_urn, name
        assert name.startswith("odoo-"), name


def test_pinned_subnet_gives_vpc_and_zone():
    """subnetId pins the subnet: its VPC and zone are used, the default VPC is not looked up."""
    subnets = {"subnet-0fffffffffffffff9": ("eu-west-1c", "vpc-0e0e0e0e0e0e0e0e0")}
    b = build(stack_settings("small", subnetId="subnet-0fffffffffffffff9"), subnets=subnets)
    assert b.invokes("aws:ec2/getVpc:getVpc") == []
    assert b.one(INSTANCE).inputs["subnetId"] == "subnet-0fffffffffffffff9"
    assert b.one(SG).inputs["vpcId"] == "vpc-0e0e0e0e0e0e0e0e0"
    assert b.one(VOLUME).inputs["availabilityZone"] == "eu-west-1c"


def test_pinned_vpc_without_subnet_picks_a_public_subnet_of_it():
    """vpcId alone: the public subnets of that VPC are the candidates, first zone wins."""
    subnets = {
        "subnet-01111111111111111": ("eu-west-1b", "vpc-0e0e0e0e0e0e0e0e0"),
        "subnet-02222222222222222": ("eu-west-1a", DEFAULT_VPC),
    }
    b = build(stack_settings("small", vpcId="vpc-0e0e0e0e0e0e0e0e0"), subnets=subnets)
    assert b.invokes("aws:ec2/getVpc:getVpc") == []
    (q,) = b.invokes("aws:ec2/getSubnets:getSubnets")
    assert {f["name"]: f["values"] for f in q["filters"]} == {
        "vpc-id": ["vpc-0e0e0e0e0e0e0e0e0"], "map-public-ip-on-launch": ["true"]}
    assert b.one(INSTANCE).inputs["subnetId"] == "subnet-01111111111111111"


def test_subnet_outside_the_pinned_vpc_is_refused():
    """A subnetId in another VPC than vpcId is a mistake worth stopping on."""
    subnets = {"subnet-0fffffffffffffff9": ("eu-west-1c", "vpc-0e0e0e0e0e0e0e0e0")}
    s = stack_settings("small", subnetId="subnet-0fffffffffffffff9", vpcId="vpc-0a0a0a0a0a0a0a0a0")
    with pytest.raises(Exception, match="not in vpcId"):
        build(s, subnets=subnets)


def test_pick_subnet_is_stable_and_refuses_none():
    """Zone name first, id second; an empty VPC asks for subnetId."""
    assert pick_subnet([("subnet-b", "eu-west-1b"), ("subnet-z", "eu-west-1a"), ("subnet-a", "eu-west-1a")]) == (
        "subnet-a", "eu-west-1a")
    with pytest.raises(ValueError, match="subnetId"):
        pick_subnet([])


def test_existing_instance_of_the_same_arch_is_fine():
    """A live instance on the sizing's architecture (resize) goes ahead."""
    b = build(stack_settings("large"), existing=(("i-0123456789abcdef0", "t4g.medium"),))
    assert b.one(INSTANCE).inputs["instanceType"] == "c7g.4xlarge"


def test_existing_instance_of_another_arch_stops_the_program():
    """An x86 server cannot become arm64 in place: the program fails before any change."""
    with pytest.raises(Exception, match=r"(?s)cannot change architecture.*arch x86_64"):
        build(stack_settings("small"), existing=(("i-0123456789abcdef0", "t3.medium"),))


def test_existing_instance_outside_the_catalogue_is_asked_to_aws():
    """A type set by hand (not catalogued) is checked through AWS's own type data."""
    with pytest.raises(Exception, match="m6i.large"):
        build(stack_settings("small"), existing=(("i-0123456789abcdef0", "m6i.large"),))
    b = build(stack_settings("small"), existing=(("i-0123456789abcdef0", "m6g.large"),))
    assert b.invokes("aws:ec2/getInstanceType:getInstanceType") == [{"instanceType": "m6g.large"}]


def test_check_architecture_message_names_the_fix():
    """The refusal names the instance, both architectures and the setting that fixes it."""
    sizing = sizing_for(stack_settings("small"))
    with pytest.raises(ArchitectureChangeError) as e:
        check_architecture([("i-1", "t3.medium", "x86_64")], sizing)
    msg = str(e.value)
    assert "i-1" in msg and "x86_64" in msg and "arm64" in msg and "pulumi config set arch x86_64" in msg
    check_architecture([("i-1", "t4g.small", "arm64")], sizing)  # same arch: no error


def test_args_refuse_the_host_target():
    """AwsServerArgs only accepts aws settings whose sizing matches them."""
    small = stack_settings("small")
    host = stack_settings("small", target="host", host="192.0.2.10", sshPublicKey="", adminCidrs=["192.0.2.1/32"])
    with pytest.raises(ValueError, match="target=aws"):
        AwsServerArgs(host, sizing_for(host))
    with pytest.raises(ValueError, match="sizing is for"):
        AwsServerArgs(small, sizing_for(stack_settings("large")))


def test_whole_program_hands_the_server_to_provisioning(monkeypatch):
    """__main__.py with the small stack: every remote step connects to the Elastic IP and the
    data-volume step is told the volume id (the contract between AwsServer and Provisioning)."""
    import json
    import runpy

    import pulumi
    from pulumi.runtime.config import set_all_config

    from odoo_pulumi.settings import ROOT, read_stack_file
    from tests.aws_mocks import FakeAws, RecordingMonitor

    def as_config(value):
        if isinstance(value, (list, dict)):
            return json.dumps(value)
        return str(value).lower() if isinstance(value, bool) else str(value)

    config = {f"odoo-pulumi:{k}": as_config(v) for k, v in read_stack_file("small").items()}
    config["odoo-pulumi:adminPassword"] = "not-a-real-password"
    config["odoo-pulumi:adminUserPassword"] = "not-a-real-user-password"
    config["odoo-pulumi:sshPrivateKey"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n"
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.chdir(ROOT)
    mocks = FakeAws()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="odoo-pulumi", stack="small", preview=False, monitor=monitor)
    set_all_config(config, ["odoo-pulumi:adminPassword", "odoo-pulumi:adminUserPassword",
                            "odoo-pulumi:sshPrivateKey"])
    @pulumi.runtime.test
    def program():
        runpy.run_path(str(ROOT / "__main__.py"))

    try:
        program()
    finally:
        set_all_config({}, [])

    types = {o["type"] for o in monitor.options.values()}
    assert "odoo:aws:Server" in types and "aws:ec2/instance:Instance" in types
    steps = {n: i for n, i in mocks.inputs.items() if monitor.options.get(n, {}).get("type") == "command:remote:Command"}
    assert steps, "provisioning created no remote step"
    for name, inputs in steps.items():
        conn = inputs["connection"]
        conn = conn.get("value", conn)  # secret-wrapped by the SDK
        assert conn["host"] == EIP_ADDRESS, name
    assert any("vol-0123456789abcdef0" in json.dumps(i, default=str) for i in steps.values())
