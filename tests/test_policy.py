"""The policy pack: each check fails what it must and passes what the component builds.

The validate functions are called with small fakes of pulumi_policy's arguments (no
engine). One test also starts the pack the way the engine does (`python -m
pulumi.policy` in policy/) and talks to it over gRPC, so the sys.path set-up and the
framework's own handling of properties and options are exercised too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "policy"))

import odoo_policies as P  # noqa: E402

from tests.aws_mocks import build, stack_settings  # noqa: E402

UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's "unknown during preview"
SSH_OPT_IN = json.dumps({"odoo-pulumi:allowSshFromAnywhere": "true", "aws:region": "eu-west-1"})


@dataclass
class FakeOpts:
    """Stands in for pulumi_policy.PolicyResourceOptions (only protect is read)."""

    protect: bool = False


@dataclass
class FakeStackArgs:
    """Stands in for pulumi_policy.StackValidationArgs (only resources is read)."""

    resources: list


@dataclass
class FakeArgs:
    """Stands in for pulumi_policy.ResourceValidationArgs."""

    resource_type: str
    props: dict
    name: str = "res"
    opts: FakeOpts = field(default_factory=FakeOpts)


class Violations(list):
    """A report_violation that keeps the messages."""

    def __call__(self, message: str, urn: Any = None) -> None:
        self.append(message)


def run(fn, resource_type: str, props: dict, protect: bool = False) -> Violations:
    found = Violations()
    fn(FakeArgs(resource_type, props, "res", FakeOpts(protect)), found)
    return found


@pytest.fixture(autouse=True)
def no_stack_config(monkeypatch):
    """Every test starts without the stack's opt-in, as most stacks are."""
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)


# --- exposed ports -------------------------------------------------------------------------------


def sg_inline(protocol, lo, hi, v4=(), v6=()):
    return {"ingress": [{"protocol": protocol, "fromPort": lo, "toPort": hi,
                         "cidrBlocks": list(v4), "ipv6CidrBlocks": list(v6)}]}


def sg_rule(protocol, lo, hi, v4=(), v6=(), kind="ingress"):
    return {"type": kind, "protocol": protocol, "fromPort": lo, "toPort": hi,
            "cidrBlocks": list(v4), "ipv6CidrBlocks": list(v6), "securityGroupId": "sg-1"}


def vpc_rule(protocol, lo, hi, v4=None, v6=None):
    props = {"ipProtocol": protocol, "securityGroupId": "sg-1"}
    if lo is not None:
        props.update(fromPort=lo, toPort=hi)
    if v4:
        props["cidrIpv4"] = v4
    if v6:
        props["cidrIpv6"] = v6
    return props


PORTS = [22, 5432, 8069, 8072]


@pytest.mark.parametrize("port", PORTS)
def test_inline_security_group_rule_opening_a_guarded_port_fails(port):
    """An inline ingress of a SecurityGroup opening 22/5432/8069/8072 to 0.0.0.0/0 fails."""
    v = run(P.validate_no_public_admin_ports, P.SG, sg_inline("tcp", port, port, v4=["0.0.0.0/0"]))
    assert len(v) == 1 and f"port {port}" in v[0]


@pytest.mark.parametrize("port", PORTS)
def test_legacy_rule_resource_opening_a_guarded_port_to_ipv6_world_fails(port):
    """aws.ec2.SecurityGroupRule (type ingress) to ::/0 fails the same way."""
    v = run(P.validate_no_public_admin_ports, P.SG_RULE, sg_rule("tcp", port, port, v6=["::/0"]))
    assert len(v) == 1 and "::/0" in v[0]


@pytest.mark.parametrize("port", PORTS)
def test_vpc_ingress_rule_opening_a_guarded_port_fails(port):
    """aws.vpc.SecurityGroupIngressRule (the kind the component uses) fails the same way."""
    v = run(P.validate_no_public_admin_ports, P.SG_INGRESS_RULE, vpc_rule("tcp", port, port, v4="0.0.0.0/0"))
    assert len(v) == 1 and f"port {port}" in v[0]


@pytest.mark.parametrize("lo,hi,expected", [(0, 65535, PORTS), (8000, 8100, [8069, 8072]),
                                            (5000, 6000, [5432]), (20, 25, [22]), (1024, 5000, [])])
def test_port_ranges_covering_guarded_ports_fail(lo, hi, expected):
    """A range is as open as every port it covers."""
    v = run(P.validate_no_public_admin_ports, P.SG_INGRESS_RULE, vpc_rule("tcp", lo, hi, v4="0.0.0.0/0"))
    assert [int(m.split("port ")[1].split(" ")[0]) for m in v] == expected


@pytest.mark.parametrize("protocol", ["-1", "all"])
def test_all_protocols_open_every_guarded_port(protocol):
    """Protocol -1/all opens everything, whatever the ports say."""
    for fn_props in (
        (P.SG, sg_inline(protocol, 0, 0, v4=["0.0.0.0/0"])),
        (P.SG_RULE, sg_rule(protocol, 0, 0, v6=["::/0"])),
        (P.SG_INGRESS_RULE, vpc_rule(protocol, None, None, v4="0.0.0.0/0")),
    ):
        v = run(P.validate_no_public_admin_ports, *fn_props)
        assert len(v) == len(PORTS), fn_props


def test_public_web_ports_admin_ssh_udp_and_egress_pass():
    """80/443 to the world, 22 from an admin block, UDP, and egress rules are fine."""
    ok = [
        (P.SG_INGRESS_RULE, vpc_rule("tcp", 80, 80, v4="0.0.0.0/0")),
        (P.SG_INGRESS_RULE, vpc_rule("tcp", 443, 443, v6="::/0")),
        (P.SG_INGRESS_RULE, vpc_rule("tcp", 22, 22, v4="203.0.113.0/24")),
        (P.SG_INGRESS_RULE, vpc_rule("tcp", 22, 22, v6="2001:db8::/32")),
        (P.SG_INGRESS_RULE, vpc_rule("udp", 5432, 5432, v4="0.0.0.0/0")),
        (P.SG_RULE, sg_rule("-1", 0, 0, v4=["0.0.0.0/0"], kind="egress")),
        (P.SG, {"ingress": [], "egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0,
                                           "cidrBlocks": ["0.0.0.0/0"]}]}),
        (P.SG, sg_inline("tcp", 22, 22, v4=["10.0.0.0/8"])),
    ]
    for t, props in ok:
        assert run(P.validate_no_public_admin_ports, t, props) == [], (t, props)


def test_other_spellings_of_the_world_fail():
    """"Every address" is caught however it is written (host bits, zero-padded IPv6)."""
    for cidr in ("0.0.0.0/0", "10.1.2.3/0", "0::0/0"):
        field_ = "cidrIpv6" if ":" in cidr else "cidrIpv4"
        props = {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, field_: cidr}
        assert run(P.validate_no_public_admin_ports, P.SG_INGRESS_RULE, props), cidr


@pytest.mark.parametrize("cidr", ["0.0.0.0/1", "128.0.0.0/2", "8000::/1", "2000::/3"])
def test_one_block_of_nearly_everything_fails(cidr):
    """Half of IPv4 in one rule is no admin range either (more than 1/256 of a family)."""
    field_ = "cidrIpv6" if ":" in cidr else "cidrIpv4"
    props = {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, field_: cidr}
    assert run(P.validate_no_public_admin_ports, P.SG_INGRESS_RULE, props), cidr


def _stack(*props_list):
    return FakeStackArgs([FakeArgs(P.SG_INGRESS_RULE, p, f"rule{i}") for i, p in enumerate(props_list)])


@pytest.mark.parametrize("pieces", [
    ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"],
    ["0.0.0.0/9", "0.128.0.0/9", "1.0.0.0/8"],  # each at most 1/256, together 2/256
    ["::/2", "4000::/2", "8000::/2", "c000::/2"],
])
def test_split_ranges_over_several_rules_fail_as_a_union(pieces, monkeypatch):
    """Issue 11.1: rules that each look narrow but together cover (nearly) a family fail
    the stack policy; with the stack's opt-in, SSH may."""
    rules = [vpc_rule("tcp", 22, 22, **({"v6": c} if ":" in c else {"v4": c})) for c in pieces]
    found = Violations()
    P.validate_admin_ports_union(_stack(*rules), found)
    assert len(found) == 1 and "port 22" in found[0] and "allowSshFromAnywhere" in found[0], found
    monkeypatch.setenv("PULUMI_CONFIG", SSH_OPT_IN)
    found = Violations()
    P.validate_admin_ports_union(_stack(*rules), found)
    assert found == []


def test_union_policy_passes_admin_ranges_and_public_web_ports():
    found = Violations()
    P.validate_admin_ports_union(_stack(
        vpc_rule("tcp", 22, 22, v4="203.0.113.0/24"), vpc_rule("tcp", 22, 22, v6="2001:db8::/32"),
        vpc_rule("tcp", 80, 80, v4="0.0.0.0/1"), vpc_rule("tcp", 80, 80, v4="128.0.0.0/1"),
        vpc_rule("tcp", 443, 443, v6="::/0")), found)
    assert found == []
    P.validate_admin_ports_union(_stack(vpc_rule("tcp", 5000, 6000, v4="0.0.0.0/1"),
                                        vpc_rule("tcp", 5432, 5432, v4="128.0.0.0/1")), found)
    assert len(found) == 1 and "port 5432" in found[0]


def test_ssh_opt_in_from_stack_config_allows_only_ssh(monkeypatch):
    """With allowSshFromAnywhere in the stack config, 22 may face the world; 5432 still may not."""
    world_ssh = vpc_rule("tcp", 22, 22, v4="0.0.0.0/0")
    assert run(P.validate_no_public_admin_ports, P.SG_INGRESS_RULE, world_ssh)
    monkeypatch.setenv("PULUMI_CONFIG", SSH_OPT_IN)
    assert run(P.validate_no_public_admin_ports, P.SG_INGRESS_RULE, world_ssh) == []
    v = run(P.validate_no_public_admin_ports, P.SG_INGRESS_RULE, vpc_rule("tcp", 0, 65535, v4="0.0.0.0/0"))
    assert len(v) == 3 and not any("port 22 " in m for m in v)


@pytest.mark.parametrize("config,allowed", [
    ("", False), ("not json", False), ('{"odoo-pulumi:allowSshFromAnywhere": "false"}', False),
    ('{"other:allowSshFromAnywhere": "true"}', False), ('{"odoo-pulumi:allowSshFromAnywhere": "true"}', True),
    ('{"odoo-pulumi:allowSshFromAnywhere": "True"}', True),
])
def test_ssh_opt_in_reads_only_the_project_key(config, allowed):
    """Only odoo-pulumi:allowSshFromAnywhere=true opts in; junk or other namespaces do not."""
    assert P.ssh_from_anywhere_allowed({"PULUMI_CONFIG": config}) is allowed


# --- IMDSv2 and encryption --------------------------------------------------------------------------


@pytest.mark.parametrize("options,fails", [
    ({"httpTokens": "required", "httpEndpoint": "enabled"}, False),
    ({"httpTokens": "optional"}, True),
    ({}, True),
    (None, True),
])
def test_imdsv2_required(options, fails):
    """An instance without http_tokens=required fails."""
    props = {"instanceType": "t4g.medium"}
    if options is not None:
        props["metadataOptions"] = options
    assert bool(run(P.validate_imdsv2, P.INSTANCE, props)) is fails


def test_imdsv2_ignores_other_types():
    """Only instances are checked for IMDSv2."""
    assert run(P.validate_imdsv2, P.VOLUME, {"encrypted": True}) == []


@pytest.mark.parametrize("props,fails", [
    ({"encrypted": True, "size": 30}, False),
    ({"encrypted": False, "size": 30}, True),
    ({"size": 30}, True),
])
def test_ebs_volume_encrypted(props, fails):
    """An EBS volume must say encrypted=True."""
    assert bool(run(P.validate_encrypted_storage, P.VOLUME, props)) is fails


@pytest.mark.parametrize("props,count", [
    ({"rootBlockDevice": {"encrypted": True}}, 0),
    ({"rootBlockDevice": {"encrypted": False}}, 1),
    ({}, 1),
    ({"rootBlockDevice": {"encrypted": True},
      "ebsBlockDevices": [{"deviceName": "/dev/sdg", "encrypted": True},
                          {"deviceName": "/dev/sdh", "encrypted": False}]}, 1),
])
def test_instance_devices_encrypted(props, count):
    """Root and extra devices of an instance must be encrypted; a missing root block counts as not."""
    assert len(run(P.validate_encrypted_storage, P.INSTANCE, props)) == count


# --- the data volume ---------------------------------------------------------------------------------


def test_data_volume_must_be_protected():
    """The volume tagged Role=data fails unless protect is set; other volumes are not concerned."""
    data = {"encrypted": True, "tags": {"Role": "data"}}
    assert run(P.validate_data_volume_protected, P.VOLUME, data, protect=False)
    assert run(P.validate_data_volume_protected, P.VOLUME, data, protect=True) == []
    assert run(P.validate_data_volume_protected, P.VOLUME, {"tags": {"Role": "scratch"}}) == []
    assert run(P.validate_data_volume_protected, P.VOLUME, {}) == []


# --- sizing -----------------------------------------------------------------------------------------


def instance(itype, users=None, upw=None, project="odoo-pulumi"):
    tags = {"Project": project}
    if users is not None:
        tags["Users"] = str(users)
    if upw is not None:
        tags["UsersPerWorker"] = str(upw)
    return {"instanceType": itype, "tags": tags}


@pytest.mark.parametrize("itype,users,upw,fails", [
    ("t4g.medium", 15, None, False),
    ("c7g.4xlarge", 150, None, False),
    ("t4g.medium", 150, None, True),     # 2 vCPU, 4 GiB for 150 users
    ("t4g.small", 15, None, True),       # 2 GiB: not enough memory
    ("c7g.xlarge", 60, 12, False),       # 12 users per worker: 5 workers fit 4 vCPU
    ("c7g.xlarge", 60, 6, False),        # 4 vCPU cap 10 workers at 8: the guide's own 80 % example
    ("c7g.large", 60, 6, True),          # 2 vCPU: 4 workers, about 24 users
    ("m7g.xlarge", 60, 6, False),
])
def test_instance_type_must_fit_the_users(itype, users, upw, fails):
    """The type must have the vCPU and memory the sizing asks for the tagged users."""
    v = run(P.validate_instance_fits_users, P.INSTANCE, instance(itype, users, upw))
    assert bool(v) is fails, v


def test_sizing_check_needs_readable_tags_and_a_catalogued_type():
    """Missing Users, junk numbers or an uncatalogued type cannot be checked: they fail."""
    assert "Users" in run(P.validate_instance_fits_users, P.INSTANCE, instance("t4g.medium"))[0]
    assert run(P.validate_instance_fits_users, P.INSTANCE, instance("t4g.medium", "many"))
    assert "catalogue" in run(P.validate_instance_fits_users, P.INSTANCE, instance("x9.huge", 15))[0]


def test_sizing_check_leaves_other_projects_alone():
    """Instances of other projects (no Project=odoo-pulumi tag) are not sized by this pack."""
    assert run(P.validate_instance_fits_users, P.INSTANCE, instance("t3.nano", 500, project="other")) == []
    assert run(P.validate_instance_fits_users, P.INSTANCE, {"instanceType": "t3.nano"}) == []


# --- the component against the pack -----------------------------------------------------------------

CHECKS = [P.validate_no_public_admin_ports, P.validate_imdsv2, P.validate_encrypted_storage,
          P.validate_data_volume_protected, P.validate_instance_fits_users]


def _violations_of(b) -> list[str]:
    found = Violations()
    for name, r in b.resources.items():
        for fn in CHECKS:
            fn(FakeArgs(r.type, r.inputs, name, FakeOpts(r.protect)), found)
    stack = FakeStackArgs([FakeArgs(r.type, r.inputs, name) for name, r in b.resources.items()])
    P.validate_admin_ports_union(stack, found)
    return found


@pytest.mark.parametrize("stack", ["small", "large"])
def test_what_the_component_builds_passes_every_policy(stack):
    """AwsServer's own resources (mocked build) pass the whole pack."""
    assert _violations_of(build(stack_settings(stack))) == []


def test_ssh_from_anywhere_build_passes_only_with_the_stack_opt_in(monkeypatch):
    """The component opens 22 to the world only with the opt-in; the pack agrees only with it."""
    b = build(stack_settings("small", allowSshFromAnywhere=True))
    v = _violations_of(b)
    assert len(v) == 3 and all("port 22" in m for m in v)  # two rules, and their union
    monkeypatch.setenv("PULUMI_CONFIG", SSH_OPT_IN)
    assert _violations_of(b) == []


# --- the pack as the engine runs it -----------------------------------------------------------------


def test_pack_runs_as_the_engine_starts_it():
    """`python -m pulumi.policy . ` in policy/ serves the five policies and fails a bad rule."""
    import grpc
    from google.protobuf import empty_pb2, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    env = {**os.environ, "PULUMI_CONFIG": json.dumps({"aws:region": "eu-west-1", "odoo-pulumi:usres": "15"})}
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=ROOT / "policy", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"the pack did not start: {port!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert info.name == "odoo-pulumi"
            assert {p.name for p in info.policies} == {
                "no-public-admin-ports", "imdsv2-required", "encrypted-storage",
                "data-volume-protected", "instance-fits-users", "no-public-admin-ports-union",
                "stack-config-declared"}

            def analyze(typ, props, protect=False):
                s = struct_pb2.Struct()
                s.update(props)
                req = analyzer_pb2.AnalyzeRequest(
                    type=typ, properties=s, urn=f"urn:pulumi:t::odoo-pulumi::{typ}::x", name="x",
                    options=analyzer_pb2.AnalyzerResourceOptions(protect=protect))
                return [(d.policyName, d.message) for d in stub.Analyze(req, timeout=30).diagnostics]

            bad = analyze(P.SG_INGRESS_RULE, vpc_rule("tcp", 5432, 5432, v4="0.0.0.0/0"))
            assert [name for name, _ in bad] == ["no-public-admin-ports"]
            assert analyze(P.SG_INGRESS_RULE, vpc_rule("tcp", 443, 443, v4="0.0.0.0/0")) == []
            data = {"encrypted": True, "type": "gp3", "tags": {"Role": "data"}}
            assert [n for n, _ in analyze(P.VOLUME, data, protect=False)] == ["data-volume-protected"]
            assert analyze(P.VOLUME, data, protect=True) == []
            small = analyze(P.INSTANCE, {**instance("t4g.medium", 150),
                                         "metadataOptions": {"httpTokens": "required"},
                                         "rootBlockDevice": {"encrypted": True}})
            assert [n for n, _ in small] == ["instance-fits-users"]
            inline = analyze(P.SG, sg_inline("tcp", 8000, 8100, v6=["::/0"]))
            assert [n for n, _ in inline] == ["no-public-admin-ports"] * 2  # 8069 and 8072
            # An address unknown until apply is reported as not checkable, never as a pass.
            unknown = analyze(P.SG_INGRESS_RULE, vpc_rule("tcp", 22, 22, v4=UNKNOWN_STRING))
            assert [n for n, m in unknown if "during preview" in m] == ["no-public-admin-ports"]
            # The stack's config as the engine hands it over: a misspelt key fails the stack.
            stack = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[]), timeout=30).diagnostics
            assert [(d.policyName, "odoo-pulumi:usres: unknown setting; did you mean users?" in d.message)
                    for d in stack] == [("stack-config-declared", True)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
