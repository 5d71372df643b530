"""Test harness: build `AwsServer` under Pulumi mocks and record what it asked for.

Used by test_server_mocks.py and test_resize_safety.py. One `build()` runs the
component once (preview=False, so every apply runs) and returns, by logical name, each
resource's type, inputs and resource options (protect, retain_on_delete,
ignore_changes, parent), every invoke with its arguments, the component's outputs and
the warnings it logged. The mocked AWS answers are deterministic so that two builds
can be diffed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402
from pulumi.runtime.config import set_all_config  # noqa: E402
from pulumi.runtime.mocks import MockMonitor  # noqa: E402

from components.server import AwsServer, AwsServerArgs  # noqa: E402
from odoo_pulumi.settings import Settings, load_settings, read_stack_file, sizing_for  # noqa: E402

PROJECT = "odoo-pulumi"
SECRETS = {"adminPassword", "adminUserPassword", "sshPrivateKey"}
OUTPUTS = ("public_ip", "instance_id", "instance_type", "data_volume_id", "workers", "sizing_summary")

EIP_ADDRESS = "198.51.100.77"
DEFAULT_VPC = "vpc-0d0d0d0d0d0d0d0d0"
# Ids deliberately not in zone order: the component must pick by zone name (eu-west-1a).
SUBNETS = {
    "subnet-0aaaaaaaaaaaaaaa1": ("eu-west-1b", DEFAULT_VPC),
    "subnet-0bbbbbbbbbbbbbbb2": ("eu-west-1c", DEFAULT_VPC),
    "subnet-0ccccccccccccccc3": ("eu-west-1a", DEFAULT_VPC),
}
AMI_BY_ARCH = {"arm64": "ami-0a1a1a1a1a1a1a1a1", "x86_64": "ami-0b2b2b2b2b2b2b2b2"}


def stack_settings(stack: str, **overrides: Any) -> Settings:
    """The validated settings of stacks/Pulumi.<stack>.yaml, with config keys overridden."""
    raw = read_stack_file(stack)
    raw.update(overrides)
    return load_settings(raw, stack, secrets_present=set(SECRETS))


@dataclass
class Recorded:
    """One resource as the component registered it."""

    type: str
    inputs: dict
    protect: bool = False
    retain_on_delete: bool = False
    ignore_changes: list = field(default_factory=list)
    parent: str = ""
    urn: str = ""


@dataclass
class Build:
    resources: dict[str, Recorded]
    calls: list[tuple[str, dict]]
    outputs: dict[str, Any]
    warnings: list[str]
    component_urn: str

    def of_type(self, typ: str) -> dict[str, Recorded]:
        return {n: r for n, r in self.resources.items() if r.type == typ}

    def one(self, typ: str) -> Recorded:
        found = list(self.of_type(typ).values())
        assert len(found) == 1, f"expected one {typ}, found {len(found)}"
        return found[0]

    def invokes(self, token: str) -> list[dict]:
        return [a for t, a in self.calls if t == token]


class FakeAws(pulumi.runtime.Mocks):
    """Deterministic AWS: the invokes the component makes and plausible resource state."""

    def __init__(self, existing: tuple[tuple[str, str], ...] = (), subnets: Optional[dict] = None):
        self.existing = dict(existing)  # instance id -> instance type
        self.subnets = SUBNETS if subnets is None else subnets
        self.calls: list[tuple[str, dict]] = []
        self.inputs: dict[str, dict] = {}  # logical name -> inputs as registered

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        a = args.args
        if args.token == "aws:ec2/getInstances:getInstances":
            return {"id": "eu-west-1", "ids": sorted(self.existing)}
        if args.token == "aws:ec2/getInstance:getInstance":
            iid = a["instanceId"]
            return {"id": iid, "instanceId": iid, "instanceType": self.existing[iid]}
        if args.token == "aws:ec2/getInstanceType:getInstanceType":
            arch = "arm64" if a["instanceType"].split(".")[0].endswith("g") else "x86_64"
            return {"id": a["instanceType"], "instanceType": a["instanceType"], "supportedArchitectures": [arch]}
        if args.token == "aws:ec2/getAmi:getAmi":
            arch = next(f["values"][0] for f in a["filters"] if f["name"] == "architecture")
            return {"id": AMI_BY_ARCH[arch], "imageId": AMI_BY_ARCH[arch], "architecture": arch,
                    "name": f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-20250101"}
        if args.token == "aws:ec2/getVpc:getVpc":
            return {"id": DEFAULT_VPC, "default": True, "cidrBlock": "172.31.0.0/16"}
        if args.token == "aws:ec2/getSubnets:getSubnets":
            vpc = next(f["values"][0] for f in a["filters"] if f["name"] == "vpc-id")
            return {"id": vpc, "ids": [s for s, (_, v) in self.subnets.items() if v == vpc]}
        if args.token == "aws:ec2/getSubnet:getSubnet":
            zone, vpc = self.subnets[a["id"]]
            return {"id": a["id"], "availabilityZone": zone, "vpcId": vpc, "mapPublicIpOnLaunch": True}
        raise AssertionError(f"unexpected invoke {args.token} {a}")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.inputs[args.name] = dict(args.inputs)
        state = dict(args.inputs)
        typ = args.typ
        rid = f"{args.name}-id"
        if typ == "aws:ec2/eip:Eip":
            state.update(publicIp=EIP_ADDRESS, allocationId="eipalloc-0123456789abcdef0")
            rid = "eipalloc-0123456789abcdef0"
        elif typ == "aws:ec2/keyPair:KeyPair":
            # An auto-named key pair is replaced when its key changes: new name.
            digest = hashlib.sha256(args.inputs.get("publicKey", "").encode()).hexdigest()[:8]
            state["keyName"] = f"{args.name}-{digest}"
        elif typ in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile"):
            state.setdefault("name", f"{args.name}-1234567")
            state["arn"] = f"arn:aws:iam::123456789012:role/{state['name']}"
        elif typ == "aws:s3/bucket:Bucket":
            rid = args.inputs["bucketPrefix"] + "20250101abcdef"
            state.update(bucket=rid, arn=f"arn:aws:s3:::{rid}", bucketRegion="eu-west-1")
        elif typ == "aws:ec2/instance:Instance":
            rid = "i-0123456789abcdef0"
        elif typ == "aws:ebs/volume:Volume":
            rid = "vol-0123456789abcdef0"
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            rid = "sg-0123456789abcdef0"
        return rid, state


class RecordingMonitor(MockMonitor):
    """The mock monitor, also keeping each registration's resource options."""

    def __init__(self, mocks: FakeAws):
        super().__init__(mocks)
        self.options: dict[str, dict] = {}

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        self.options[request.name] = {
            "type": request.type,
            "protect": bool(request.protect),
            "retain_on_delete": bool(request.retainOnDelete),
            "ignore_changes": list(request.ignoreChanges),
            "parent": request.parent,
            "urn": response.urn,
        }
        return response


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def build(settings: Settings, *, existing: tuple[tuple[str, str], ...] = (),
          subnets: Optional[dict] = None, name: str = "odoo") -> Build:
    """Run AwsServer once under mocks and return what it registered and output."""
    sizing = sizing_for(settings)
    mocks = FakeAws(existing=existing, subnets=subnets)
    monitor = RecordingMonitor(mocks)
    handler = _ListHandler()
    logger = logging.getLogger(f"aws-mocks-{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=settings.stack, preview=False,
                             monitor=monitor, logger=logger)
    outputs: dict[str, Any] = {}
    holder: dict[str, AwsServer] = {}

    @pulumi.runtime.test
    def run():
        server = AwsServer(name, AwsServerArgs(settings, sizing))
        holder["server"] = server
        return pulumi.Output.all(**{k: getattr(server, k) for k in OUTPUTS}).apply(outputs.update)

    run()
    # Registrations finish asynchronously: the recorded inputs are complete only now.
    resources = {}
    component_urn = ""
    for res_name, opt in monitor.options.items():
        if opt["type"] == "pulumi:pulumi:Stack":
            continue
        if opt["type"] == "odoo:aws:Server":
            component_urn = opt["urn"]
            continue
        resources[res_name] = Recorded(
            type=opt["type"], inputs=mocks.inputs.get(res_name, {}), protect=opt["protect"],
            retain_on_delete=opt["retain_on_delete"], ignore_changes=opt["ignore_changes"],
            parent=opt["parent"], urn=opt["urn"],
        )
    warnings = [r.getMessage() for r in handler.records if r.levelno == logging.WARNING]
    return Build(resources, list(mocks.calls), outputs, warnings, component_urn)



def run_main(stack: str, config: dict[str, str], secret_keys: list[str], mocks: pulumi.runtime.Mocks,
             monitor: MockMonitor) -> dict[str, Any]:
    """Run the whole program (__main__.py) for `stack` under mocks, once, as the engine would
    from the repository (preview=False, so every apply runs); return its resolved exports.
    The SDK's global state (config, pulumi.export, pulumi.log.debug, cwd, PULUMI_CONFIG) is put
    back after."""
    exports: dict[str, Any] = {}
    resolved: dict[str, Any] = {}
    saved = (pulumi.export, os.getcwd(), os.environ.pop("PULUMI_CONFIG", None), pulumi.log.debug)
    pulumi.export = lambda name, value: exports.__setitem__(name, value)
    os.chdir(ROOT)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    set_all_config(config, secret_keys)

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(ROOT / "__main__.py"))
        return pulumi.Output.all(**{k: pulumi.Output.from_input(v) for k, v in exports.items()}).apply(
            resolved.update)

    try:
        program()
    finally:
        set_all_config({}, [])
        pulumi.export = saved[0]
        pulumi.log.debug = saved[3]  # the program drops the SDK's debug lines (__main__.py)
        os.chdir(saved[1])
        if saved[2] is not None:
            os.environ["PULUMI_CONFIG"] = saved[2]
    return resolved
