"""The checks of the odoo-pulumi policy pack, as plain validate functions.

Each `validate_*` function takes pulumi_policy's (args, report_violation) and only reads
`args.resource_type`, `args.name`, `args.props` (camelCase, as the engine sends them) and
`args.opts.protect`, so tests call it with small fakes and no engine. `POLICIES` wraps
them for `PolicyPack` in `__main__.py`.

The sizing check imports `odoo_pulumi.sizing`, the stack-config check
`odoo_pulumi.settings`, from the repository: the pack's `__main__.py` puts the
repository root on `sys.path` before importing this module.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, Mapping, Optional

from odoo_pulumi.checks import WIDE_SHARE_BITS, wide_ranges
from odoo_pulumi.instance_types import BY_NAME
from odoo_pulumi.project import ROOT
from odoo_pulumi.settings import lint_config, lint_stack_file
from odoo_pulumi.sizing import USERS_PER_WORKER, SizingError, size

PROJECT = "odoo-pulumi"
SSH_OPT_IN_KEY = f"{PROJECT}:allowSshFromAnywhere"

# Ports that must never face the Internet: Odoo and PostgreSQL listen behind Nginx, SSH
# only for the admins (unless the stack opts in).
GUARDED_PORTS = {22: "SSH", 5432: "PostgreSQL", 8069: "Odoo HTTP", 8072: "Odoo websocket/longpolling"}
ALL_PROTOCOLS = {"-1", "all"}
TCP = {"tcp", "6"}

SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"

Report = Callable[..., None]


# --- the stack's opt-in --------------------------------------------------------------------------


def ssh_from_anywhere_allowed(environ: Mapping[str, str] = os.environ) -> bool:
    """True when the stack config sets `odoo-pulumi:allowSshFromAnywhere: true`.

    The engine hands a Python policy pack the stack's configuration as JSON in
    PULUMI_CONFIG (the same way it hands it to the program), so the opt-in is the very
    setting the operator wrote, not something any resource could claim for itself.
    """
    config = stack_config(environ)
    value = config.get(SSH_OPT_IN_KEY, config.get(f"{PROJECT}:config:allowSshFromAnywhere", "false"))
    return str(value).strip().lower() == "true"


def stack_config(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The stack's configuration as the engine hands it to the pack (PULUMI_CONFIG,
    JSON of namespaced keys to strings; secrets decrypted); {} when absent or unreadable."""
    raw = environ.get("PULUMI_CONFIG", "")
    try:
        config = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    return config if isinstance(config, dict) else {}


def validate_stack_config(args: Any, report_violation: Report, environ: Mapping[str, str] = os.environ) -> None:
    """The stack's config: every key of the project declared in Pulumi.yaml with a value
    its key allows, and no secret in plain text in the stack file.

    The config is what the engine hands the pack; it holds secrets decrypted and
    pulumi_policy (1.21) keeps no list of which keys were secret, so whether a secret
    was stored encrypted is judged from stacks/Pulumi.<stack>.yaml when it is there
    (the same lint as `make lint-stacks`). Secret values are never judged nor shown.
    """
    problems = lint_config(stack_config(environ), "stack config", secrets_marked=False)
    stack = environ.get("PULUMI_STACK", "").rsplit("/", 1)[-1]
    path = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    if stack and path.is_file():
        problems += [p for p in lint_stack_file(path) if p.kind == "plain-secret"]
    for problem in problems:
        report_violation(str(problem))


# --- helpers -----------------------------------------------------------------------------------------


def _is_world(cidr: Any) -> bool:
    """0.0.0.0/0, ::/0, or any block that alone is (nearly) a whole address family
    (more than 1/256 of it: odoo_pulumi/checks.py); unknown values are not judged."""
    return bool(wide_ranges([str(cidr)]))


def guarded_ports_opened(protocol: Any, from_port: Any, to_port: Any) -> list[int]:
    """The guarded ports an ingress rule opens (all of them for protocol -1/all).

    Every guarded service is TCP, so UDP and ICMP rules open none of them. A TCP rule
    without ports is read as the whole range (the conservative reading).
    """
    proto = str(protocol).strip().lower() if protocol is not None else "tcp"
    if proto in ALL_PROTOCOLS:
        return sorted(GUARDED_PORTS)
    if proto not in TCP:
        return []
    lo = 0 if from_port is None else int(from_port)
    hi = 65535 if to_port is None else int(to_port)
    if lo > hi:
        lo, hi = hi, lo
    return [p for p in sorted(GUARDED_PORTS) if lo <= p <= hi]


def _world_cidrs(*groups: Optional[Iterable[Any]]) -> list[str]:
    return [str(c) for group in groups for c in (group or []) if _is_world(c)]


def _check_rule(name: str, protocol: Any, from_port: Any, to_port: Any, world: list[str],
                report_violation: Report, ssh_allowed: bool) -> None:
    if not world:
        return
    for port in guarded_ports_opened(protocol, from_port, to_port):
        if port == 22 and ssh_allowed:
            continue
        hint = (" Set allowSshFromAnywhere: true in the stack if SSH must really face the world."
                if port == 22 else " Only 80 and 443 may face the Internet; this service listens behind Nginx.")
        report_violation(
            f"{name}: ingress opens port {port} ({GUARDED_PORTS[port]}) to {', '.join(world)} "
            f"(protocol {protocol}, ports {from_port}-{to_port}).{hint}"
        )


def _tags(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return props.get("tags") or {}


# --- the policies ----------------------------------------------------------------------------------


def validate_no_public_admin_ports(args: Any, report_violation: Report) -> None:
    """SSH, PostgreSQL and Odoo's own ports never open to 0.0.0.0/0 or ::/0."""
    t, p = args.resource_type, args.props
    ssh_allowed = ssh_from_anywhere_allowed()
    if t == SG:
        for rule in p.get("ingress") or []:
            world = _world_cidrs(rule.get("cidrBlocks"), rule.get("ipv6CidrBlocks"))
            _check_rule(args.name, rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"),
                        world, report_violation, ssh_allowed)
    elif t == SG_RULE:
        if p.get("type") == "ingress":
            world = _world_cidrs(p.get("cidrBlocks"), p.get("ipv6CidrBlocks"))
            _check_rule(args.name, p.get("protocol"), p.get("fromPort"), p.get("toPort"),
                        world, report_violation, ssh_allowed)
    elif t == SG_INGRESS_RULE:
        world = _world_cidrs([p.get("cidrIpv4")] if p.get("cidrIpv4") else [],
                             [p.get("cidrIpv6")] if p.get("cidrIpv6") else [])
        _check_rule(args.name, p.get("ipProtocol"), p.get("fromPort"), p.get("toPort"),
                    world, report_violation, ssh_allowed)


def _ingress_of(resource_type: str, p: Mapping[str, Any]) -> list[tuple[Any, Any, Any, list[str]]]:
    """(protocol, from, to, CIDR blocks) of every ingress a resource declares."""
    out = []
    if resource_type == SG:
        for rule in p.get("ingress") or []:
            out.append((rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"),
                        list(rule.get("cidrBlocks") or []) + list(rule.get("ipv6CidrBlocks") or [])))
    elif resource_type == SG_RULE and p.get("type") == "ingress":
        out.append((p.get("protocol"), p.get("fromPort"), p.get("toPort"),
                    list(p.get("cidrBlocks") or []) + list(p.get("ipv6CidrBlocks") or [])))
    elif resource_type == SG_INGRESS_RULE:
        out.append((p.get("ipProtocol"), p.get("fromPort"), p.get("toPort"),
                    [c for c in (p.get("cidrIpv4"), p.get("cidrIpv6")) if c]))
    return out


def validate_admin_ports_union(args: Any, report_violation: Report) -> None:
    """The ranges that reach a guarded port, taken together over the stack, are not
    (nearly) the whole Internet: 0.0.0.0/1 and 128.0.0.0/1 in two rules open SSH to
    everyone as surely as one 0.0.0.0/0."""
    ssh_allowed = ssh_from_anywhere_allowed()
    by_port: dict[int, list[str]] = {}
    for r in args.resources:
        for protocol, lo, hi, cidrs in _ingress_of(r.resource_type, r.props):
            for port in guarded_ports_opened(protocol, lo, hi):
                by_port.setdefault(port, []).extend(str(c) for c in cidrs if isinstance(c, str))
    for port, cidrs in sorted(by_port.items()):
        if port == 22 and ssh_allowed:
            continue
        wide = wide_ranges(cidrs)
        if wide:
            report_violation(
                f"port {port} ({GUARDED_PORTS[port]}) is reachable, over all ingress rules of the stack, from "
                f"{'; '.join(wide)}: more than 1/{2 ** WIDE_SHARE_BITS} of an address family."
                + (" Set allowSshFromAnywhere: true in the stack if SSH must really face the world." if port == 22
                   else " Only 80 and 443 may face the Internet.")
            )


def validate_imdsv2(args: Any, report_violation: Report) -> None:
    """Instances answer metadata requests only with a session token (IMDSv2)."""
    if args.resource_type != INSTANCE:
        return
    tokens = (args.props.get("metadataOptions") or {}).get("httpTokens")
    if tokens != "required":
        report_violation(
            f"{args.name}: IMDSv2 is not required (metadataOptions.httpTokens={tokens!r}); "
            "set http_tokens='required' so that a request forgery cannot read the role's credentials."
        )


def validate_encrypted_storage(args: Any, report_violation: Report) -> None:
    """Every EBS volume and instance root/extra device is encrypted."""
    t, p = args.resource_type, args.props
    if t == VOLUME:
        if p.get("encrypted") is not True:
            report_violation(f"{args.name}: EBS volume is not encrypted (encrypted={p.get('encrypted')!r}).")
    elif t == INSTANCE:
        root = p.get("rootBlockDevice") or {}
        if root.get("encrypted") is not True:
            report_violation(
                f"{args.name}: root device is not encrypted; set root_block_device.encrypted=True."
            )
        for i, dev in enumerate(p.get("ebsBlockDevices") or []):
            if dev.get("encrypted") is not True:
                report_violation(f"{args.name}: ebs_block_devices[{i}] ({dev.get('deviceName')}) is not encrypted.")


def validate_data_volume_protected(args: Any, report_violation: Report) -> None:
    """The data volume (tag Role=data) is protected from deletion by Pulumi."""
    if args.resource_type != VOLUME or _tags(args.props).get("Role") != "data":
        return
    if not getattr(args.opts, "protect", False):
        report_violation(
            f"{args.name}: the data volume (database and filestore) is not protected; "
            "set protect=True (and retain_on_delete=True) on it."
        )


def validate_instance_fits_users(args: Any, report_violation: Report) -> None:
    """The instance type has the vCPUs and memory the sizing needs for the Users tag."""
    if args.resource_type != INSTANCE:
        return
    tags = _tags(args.props)
    if tags.get("Project") != PROJECT:
        return  # not an odoo-pulumi server
    itype = args.props.get("instanceType")
    users_tag, upw_tag = tags.get("Users"), tags.get("UsersPerWorker", str(USERS_PER_WORKER))
    try:
        users, upw = int(users_tag), int(upw_tag)
    except (TypeError, ValueError):
        report_violation(
            f"{args.name}: tags Users={users_tag!r} / UsersPerWorker={upw_tag!r} are not whole numbers; "
            "the instance type cannot be checked against the sizing."
        )
        return
    if itype not in BY_NAME:
        report_violation(
            f"{args.name}: instance type {itype!r} is not in the sizing catalogue "
            f"(odoo_pulumi/instance_types.py); it cannot be checked for {users} users."
        )
        return
    try:
        size(users, users_per_worker=upw, instance_type=itype)
    except SizingError as e:
        report_violation(f"{args.name}: {e}")


def policies() -> list:
    """The policies of the pack (imported lazily so that the checks need no pulumi_policy)."""
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

    def policy(name: str, fn: Callable) -> ResourceValidationPolicy:
        return ResourceValidationPolicy(
            name=name, description=(fn.__doc__ or "").strip(), validate=fn,
            enforcement_level=EnforcementLevel.MANDATORY,
        )

    return [
        policy("no-public-admin-ports", validate_no_public_admin_ports),
        policy("imdsv2-required", validate_imdsv2),
        policy("encrypted-storage", validate_encrypted_storage),
        policy("data-volume-protected", validate_data_volume_protected),
        policy("instance-fits-users", validate_instance_fits_users),
        StackValidationPolicy(
            name="no-public-admin-ports-union", description=(validate_admin_ports_union.__doc__ or "").strip(),
            validate=validate_admin_ports_union, enforcement_level=EnforcementLevel.MANDATORY,
        ),
        StackValidationPolicy(
            name="stack-config-declared", description=(validate_stack_config.__doc__ or "").strip(),
            validate=validate_stack_config, enforcement_level=EnforcementLevel.MANDATORY,
        ),
    ]
