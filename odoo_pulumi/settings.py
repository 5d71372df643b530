"""The stack's settings, read and validated in one place before any resource exists.

`Pulumi.yaml` declares every key once (type, default, description); this module adds
what is allowed and turns the raw values into one frozen `Settings`. Any bad value
stops the program with one message naming the key, the value and what is allowed.
No Pulumi import: the same code serves `pulumi up`, the render command and the tests.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from odoo_pulumi import checks, sizing
from odoo_pulumi.instance_types import BY_NAME

PROJECT = "odoo-pulumi"
ROOT = Path(__file__).resolve().parent.parent
SECRET_KEYS = ("adminPassword", "adminUserPassword", "sshPrivateKey")

ODOO_VERSIONS = ("17.0", "18.0", "19.0")
ODOO_SOURCES = ("deb", "git", "archive")
TARGETS = ("aws", "host")
ARCHES = ("any", "x86_64", "arm64")
POSTGRES_VERSIONS = (15, 16, 17)

_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
# Odoo's administrator login: an e-mail address, or a simple name that is safe in SQL and logs.
_LOGIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,63}|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$")
_DBNAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_TZ = re.compile(r"^(UTC|[A-Z][A-Za-z_+-]+(/[A-Za-z0-9_+-]+){1,2})$")
_LOCALE = re.compile(r"^[a-z]{2,3}_[A-Z]{2}\.UTF-8$")
_SSH_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")
_VPC = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_ZONE = re.compile(r"^Z[A-Z0-9]{1,31}$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(mrk-)?[0-9a-f-]{32,36}$")


class SettingsError(ValueError):
    """A bad stack setting; the message names the key, the value and what is allowed."""


@dataclass(frozen=True)
class Settings:
    stack: str
    target: str
    users: int
    users_per_worker: int
    full_worker_count: bool
    instance_type: str | None
    arch: str
    limit_time_cpu: int
    limit_time_real: int
    odoo_version: str
    odoo_source: str
    odoo_archive: str | None
    odoo_git_repo: str
    odoo_git_ref: str
    pip_index_url: str | None
    pip_find_links: str | None
    install_wkhtmltopdf: bool
    addons_paths: tuple[str, ...]
    database: str
    admin_login: str
    upload_limit_mib: int
    domain: str | None
    letsencrypt_email: str | None
    host: str | None
    host_vcpus: int
    host_memory_mib: int
    host_threads_per_core: int
    port: int
    ssh_user: str
    ssh_public_key: str | None
    dial_error_limit: int
    timezone: str
    locale: str
    postgres_version: int
    firewall: bool
    keep_data_on_destroy: bool
    ami: str | None
    vpc_id: str | None
    subnet_id: str | None
    admin_cidrs: tuple[str, ...]
    allow_ssh_from_anywhere: bool
    root_volume_gib: int
    data_volume_gib: int
    hosted_zone_id: str | None
    production: bool
    backup_retention_days: int
    ebs_snapshots: bool
    backup_destination: str
    backup_kms_key_arn: str | None = None

    @property
    def url(self) -> str | None:
        return f"https://{self.domain}" if self.domain else None


@functools.lru_cache(maxsize=4)
def declared_config(path: Path = ROOT / "Pulumi.yaml") -> dict[str, dict[str, Any]]:
    """The `config:` block of Pulumi.yaml: the one declaration of every key.

    Read once per process with libyaml's loader when present (10x faster than the pure
    Python one: every preview pays for it)."""
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["config"]


def read_stack_file(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The project's keys of stacks/Pulumi.<stack>.yaml, without the namespace.

    Secure values are kept as their encrypted form: only their presence matters here.
    Every scalar stays the text the operator wrote (YAML's base schema): the engine hands
    the program strings too, so `users: 015` or `firewall: yes` are judged the same way
    here (mocks, render) as under `pulumi preview`, instead of PyYAML's YAML 1.1 reading
    (octal 13, True).
    """
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (root / "stacks").glob("Pulumi.*.yaml"))
        raise SettingsError(f"stack {stack!r}: no file {path}; stacks: {', '.join(known)}")
    data = yaml.load(path.read_text(), Loader=yaml.BaseLoader) or {}
    out = {}
    for key, value in (data.get("config") or {}).items():
        ns, _, name = key.partition(":")
        if ns == PROJECT:
            out[name] = value
    return out


def check_stack_file(stack: str, root: Path = ROOT) -> None:
    """Refuse integers and booleans the stack file spells ambiguously.

    The engine reads the file as YAML 1.2 with Go's octal rules and hands the program
    only the result: `users: 015` arrives as "13", `1_5` as "15". A person reads 015 as
    fifteen. So the program also judges the text as written (no file: nothing to judge,
    e.g. config from the environment).
    """
    if not (root / "stacks" / f"Pulumi.{stack}.yaml").exists():
        return
    declared = declared_config(root / "Pulumi.yaml")
    for key, value in read_stack_file(stack, root).items():
        kind = declared.get(key, {}).get("type")
        if kind in ("integer", "boolean") and isinstance(value, str):
            _COERCE[kind](key, value)


# --- coercion of raw values (strings from the engine, typed values from YAML) ------------


def _fail(key: str, value: Any, allowed: str) -> SettingsError:
    return SettingsError(f"setting {key}={checks.cut(value)} is invalid: {allowed}")


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _fail(key, value, "expected a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        why = checks.ambiguous_number(value)
        if why is None:
            return int(value)
        raise _fail(key, value, "expected a whole number" if why == "not a whole number"
                    else f"expected a whole number in plain digits, without {why}")
    raise _fail(key, value, "expected a whole number")


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _fail(key, value, "expected true or false (yes/no/on/off mean true/false to some YAML "
                            "readers and text to others)")


def _as_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            raise _fail(key, value, "expected a list of strings") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(key, value, "expected a list of strings")
    return value


def _as_str(key: str, value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise _fail(key, value, "expected a string")
    return str(value).strip()


_COERCE: dict[str, Callable[[str, Any], Any]] = {
    "integer": _as_int,
    "boolean": _as_bool,
    "array": _as_list,
    "string": _as_str,
}


# --- validation rules, one per key that has limits -----------------------------------------


def _range(lo: int, hi: int) -> Callable[[str, int], None]:
    def check(key: str, v: int) -> None:
        if not lo <= v <= hi:
            raise _fail(key, v, f"allowed {lo}..{hi}")

    return check


def _one_of(choices: tuple) -> Callable[[str, Any], None]:
    def check(key: str, v: Any) -> None:
        if v not in choices:
            raise _fail(key, v, "allowed: " + ", ".join(map(str, choices)))

    return check


def _pattern(rx: re.Pattern, what: str, optional: bool = True) -> Callable[[str, str], None]:
    def check(key: str, v: str) -> None:
        if (v or not optional) and not rx.match(v):
            raise _fail(key, v, what)

    return check


def _users(key: str, v: int) -> None:
    top = sizing.max_users()
    if not 1 <= v <= top:
        raise _fail(key, v, f"allowed 1..{top} concurrent users (more needs more than one VM)")


def _abs_paths(key: str, v: list[str]) -> None:
    for p in v:
        if not re.fullmatch(r"/[A-Za-z0-9._/-]*", p) or checks.normal_path(p) != p.rstrip("/") or "//" in p:
            raise _fail(key, v, f"each entry must be an absolute path without '..', '.' or '//' "
                                f"({checks.cut(p)} is not)")


def _cidrs(key: str, v: list[str]) -> None:
    for c in v:
        try:
            ipaddress.ip_network(c, strict=False)
        except ValueError:
            raise _fail(key, v, f"each entry must be a CIDR block like 203.0.113.0/24 ({checks.cut(c)} is not)") from None


def _url(key: str, v: str) -> None:
    if v and not re.match(r"^(https?|ssh|git)://[^\s'\"]+$|^git@[^\s'\"]+$", v):
        raise _fail(key, v, "expected an http(s)://, ssh:// or git@ URL")


def _index_url(key: str, v: str) -> None:
    """A package index is fetched over HTTP(S) by pip; nothing else is one."""
    if v and not re.match(r"^https?://[A-Za-z0-9.\[\]:_-]+(/[^\s'\"]*)?$", v):
        raise _fail(key, v, "expected an http:// or https:// URL of a package index, e.g. https://pypi.example.com/simple")
def _email(key: str, v: str) -> None:
    if v and (len(v) > 254 or not _EMAIL.match(v)):  # 254: the longest address SMTP carries
        raise _fail(key, v, "expected an e-mail address like admin@example.com (at most 254 characters)")


def _git_ref(key: str, v: str) -> None:
    why = checks.bad_git_ref(v) if v else None
    if why:
        raise _fail(key, v, f"expected a branch, tag or commit name as git check-ref-format allows ({why})")


# Backups prune old files in their destination: it must be a directory of its own.
SHARED_DIRECTORIES = ("/", "/etc", "/usr", "/var", "/var/lib", "/var/lib/odoo", "/tmp", "/root", "/home")


def _backup_destination(key: str, v: str) -> None:
    if v.startswith("s3://"):
        if not re.fullmatch(r"s3://[a-z0-9.-]{3,63}(/[A-Za-z0-9._/-]*)?", v) or "/../" in v + "/" or "/./" in v + "/":
            raise _fail(key, v, "expected an s3://bucket/prefix URL (no '.' or '..' segment)")
        return
    if not re.fullmatch(r"/[A-Za-z0-9._/-]+", v):
        raise _fail(key, v, "expected an absolute directory on the server or an s3://bucket/prefix URL")
    # Judge the directory the server would really use: /srv/../etc is /etc.
    path = checks.normal_path(v)
    if path in SHARED_DIRECTORIES or path.startswith("/var/lib/odoo/"):
        said = f" (that is {path})" if path != v.rstrip("/") else ""
        raise _fail(key, v, f"pick a directory of its own{said}: old backups there are pruned; e.g. /var/backups/odoo")
    if path != v.rstrip("/"):
        raise _fail(key, v, f"write the directory without '.', '..' or '//': {path}")


RULES: dict[str, Callable[[str, Any], None]] = {
    "users": _users,
    "usersPerWorker": _range(1, 50),
    # instanceType: judged in _check_instance_type, where the users are known (the
    # message lists a few types that fit them, not the whole catalogue).
    "arch": _one_of(ARCHES),
    "limitTimeCpu": _range(30, 7200),
    "limitTimeReal": _range(60, 14400),
    "odooVersion": _one_of(ODOO_VERSIONS),
    "odooSource": _one_of(ODOO_SOURCES),
    "odooGitRepo": _url,
    "pipIndexUrl": _index_url,
    "odooGitRef": _git_ref,
    "pipFindLinks": lambda k, v: _abs_paths(k, [v]) if v else None,
    "addonsPaths": _abs_paths,
    "database": _pattern(_DBNAME, "expected lowercase letters, digits and _ starting with a letter (max 63)", False),
    "adminLogin": _pattern(_LOGIN, "expected an e-mail address like admin@example.com or a simple login "
                           "(letters, digits, '.', '_', '-'; at most 64 characters)", False),
    "uploadLimitMiB": _range(1, 4096),
    "domain": _pattern(_HOSTNAME, "expected a lowercase host name like erp.example.com"),
    "letsencryptEmail": _email,
    "port": _range(1, 65535),
    "hostVcpus": _range(0, 448),
    "hostMemoryMiB": _range(0, 24 * 1024 * 1024),
    "hostThreadsPerCore": _range(1, 8),
    "sshUser": _pattern(_SSH_USER, "expected a Unix user name", False),
    "dialErrorLimit": _range(-1, 100000),
    "timezone": _pattern(_TZ, "expected UTC or an Area/City zone like Europe/Brussels", False),
    "locale": _pattern(_LOCALE, "expected a UTF-8 locale like en_US.UTF-8", False),
    "postgresVersion": _one_of(POSTGRES_VERSIONS),
    "target": _one_of(TARGETS),
    "ami": _pattern(_AMI, "expected an AMI id like ami-0123456789abcdef0"),
    "vpcId": _pattern(_VPC, "expected a VPC id like vpc-0123456789abcdef0"),
    "subnetId": _pattern(_SUBNET, "expected a subnet id like subnet-0123456789abcdef0"),
    "adminCidrs": _cidrs,
    "rootVolumeGiB": _range(10, 1024),
    "dataVolumeGiB": _range(10, 16384),
    "hostedZoneId": _pattern(_ZONE, "expected a Route 53 zone id like Z0123456789ABC"),
    "backupRetentionDays": _range(1, 3650),
    "backupDestination": _backup_destination,
    "backupKmsKeyArn": _pattern(_KMS_KEY_ARN, "expected a KMS key ARN like "
                                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
}


def load_settings(raw: Mapping[str, Any], stack: str, secrets_present: set[str] | None = None,
                  secret_values: Mapping[str, str] | None = None) -> Settings:
    """Validate the raw stack config (project keys without namespace) into Settings.

    `secrets_present` names the secret keys the stack has. `secret_values` (the program
    passes them; the dry run has none) are only judged for strength, never kept nor
    repeated. Cross-key rules run after each key is valid on its own.
    """
    declared = declared_config()
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        hints = sorted({m for k in unknown for m in difflib.get_close_matches(str(k), list(declared), n=2)})
        names = ", ".join(str(k)[:40] for k in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise SettingsError(
            f"unknown setting(s) {names} in stack {stack!r}; "
            + (f"did you mean {', '.join(hints)}? (every setting is declared in Pulumi.yaml)" if hints
               else f"allowed: {', '.join(sorted(declared))}")
        )
    secrets_present = set(secrets_present if secrets_present is not None else
                          (k for k in SECRET_KEYS if k in raw))
    v: dict[str, Any] = {}
    for key, decl in declared.items():
        if decl.get("secret"):
            continue
        if key in raw and raw[key] is not None:
            value = _COERCE[decl["type"]](key, raw[key])
        elif "default" in decl:
            value = decl["default"]
        else:
            raise SettingsError(f"setting {key} is required: {decl['description']}")
        if key in RULES:
            RULES[key](key, value)
        v[key] = value

    for key in SECRET_KEYS:  # a secure value is {"secure": ...}; a plain string is a leak
        if isinstance(raw.get(key), str):
            raise SettingsError(f"setting {key} must be stored as a secret, not in plain text: "
                                f"pulumi config set --secret {key}")
    if "adminPassword" not in secrets_present:
        raise SettingsError(
            "setting adminPassword is required and must be a secret: "
            "pulumi config set --secret adminPassword"
        )
    if "adminUserPassword" not in secrets_present:
        raise SettingsError(
            "setting adminUserPassword is required and must be a secret (the password of Odoo's "
            "administrator user, adminLogin): pulumi config set --secret adminUserPassword"
        )
    if "sshPrivateKey" not in secrets_present:
        raise SettingsError(
            "setting sshPrivateKey is required and must be a secret: "
            "pulumi config set --secret sshPrivateKey < ~/.ssh/odoo_ed25519"
        )

    _check_secret_strength(declared, secret_values or {})
    _cross_checks(v)
    _check_instance_type(v)
    try:  # the sizing's own checks (instance type too small, too many users)
        z = sizing.size(
            v["users"], users_per_worker=v["usersPerWorker"], instance_type=v["instanceType"] or None,
            arch=v["arch"], limit_time_real=v["limitTimeReal"], limit_time_cpu=v["limitTimeCpu"],
            host_vcpus=v["hostVcpus"] if v["target"] == "host" else 0,
            host_memory_mib=v["hostMemoryMiB"] if v["target"] == "host" else 0,
            host_threads_per_core=v["hostThreadsPerCore"], full_worker_count=v["fullWorkerCount"],
        )
    except sizing.SizingError as e:
        raise SettingsError(f"setting users={v['users']}: {e}") from None
    check_limit_pairs(z)

    return Settings(
        stack=stack,
        target=v["target"],
        users=v["users"],
        users_per_worker=v["usersPerWorker"],
        full_worker_count=v["fullWorkerCount"],
        instance_type=v["instanceType"] or None,
        arch=v["arch"],
        limit_time_cpu=v["limitTimeCpu"],
        limit_time_real=v["limitTimeReal"],
        odoo_version=v["odooVersion"],
        odoo_source=v["odooSource"],
        odoo_archive=v["odooArchive"] or None,
        odoo_git_repo=v["odooGitRepo"],
        odoo_git_ref=v["odooGitRef"] or v["odooVersion"],
        pip_index_url=v["pipIndexUrl"] or None,
        pip_find_links=v["pipFindLinks"] or None,
        install_wkhtmltopdf=v["installWkhtmltopdf"],
        addons_paths=tuple(v["addonsPaths"]),
        database=v["database"],
        admin_login=v["adminLogin"],
        upload_limit_mib=v["uploadLimitMiB"],
        domain=v["domain"] or None,
        letsencrypt_email=v["letsencryptEmail"] or None,
        host=v["host"] or None,
        host_vcpus=v["hostVcpus"],
        host_memory_mib=v["hostMemoryMiB"],
        host_threads_per_core=v["hostThreadsPerCore"],
        port=v["port"],
        ssh_user=v["sshUser"],
        ssh_public_key=v["sshPublicKey"] or None,
        dial_error_limit=v["dialErrorLimit"],
        timezone=v["timezone"],
        locale=v["locale"],
        postgres_version=v["postgresVersion"],
        firewall=v["firewall"],
        keep_data_on_destroy=v["keepDataOnDestroy"],
        ami=v["ami"] or None,
        vpc_id=v["vpcId"] or None,
        subnet_id=v["subnetId"] or None,
        admin_cidrs=tuple(v["adminCidrs"]),
        allow_ssh_from_anywhere=v["allowSshFromAnywhere"],
        root_volume_gib=v["rootVolumeGiB"],
        data_volume_gib=v["dataVolumeGiB"],
        hosted_zone_id=v["hostedZoneId"] or None,
        production=v["production"],
        backup_retention_days=v["backupRetentionDays"],
        ebs_snapshots=v["ebsSnapshots"],
        backup_destination=v["backupDestination"],
        backup_kms_key_arn=v["backupKmsKeyArn"] or None,
    )


def password_keys(declared: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The secret settings that are passwords (every declared secret named *Password)."""
    return [k for k, d in declared.items() if d.get("secret") and k.endswith("Password")]


def _check_secret_strength(declared: Mapping[str, Mapping[str, Any]], values: Mapping[str, str]) -> None:
    """Refuse a weak password without ever repeating it (nor its length)."""
    for key in password_keys(declared):
        if key not in values:
            continue
        why = checks.weak_secret(values[key] or "")
        if why:
            raise SettingsError(
                f"setting {key}=<secret, not shown> is invalid: {why}; allowed: at least "
                f"{checks.SECRET_MIN_LENGTH} characters, not a known default (admin, odoo, password...), "
                f"not one pattern repeated: pulumi config set --secret {key}"
            )


def _check_instance_type(v: dict[str, Any]) -> None:
    """An unknown instanceType: name the few catalogued types that would fit."""
    name = v["instanceType"]
    if not name or name in BY_NAME:
        return
    fits = []
    for t in sorted(BY_NAME.values(), key=lambda t: (t.usd_per_hour, t.name)):
        try:
            sizing.size(v["users"], users_per_worker=v["usersPerWorker"], instance_type=t.name, arch=v["arch"],
                        limit_time_real=v["limitTimeReal"], limit_time_cpu=v["limitTimeCpu"])
        except sizing.SizingError:
            continue
        fits.append(t.name)
        if len(fits) == 4:
            break
    hint = f"types that fit users={v['users']}: {', '.join(fits)}" if fits else "see odoo_pulumi/instance_types.py"
    raise _fail("instanceType", name, f"not in the catalogue; {hint} (or leave it empty for the cheapest)")


def check_limit_pairs(z: sizing.Sizing) -> None:
    """Every limit that must stay below another does, whatever set them.

    Odoo's CPU limit must act before its wall-clock limit, cron jobs get at least as long
    as requests, a worker's soft memory limit is below its hard one, and Nginx waits longer
    than Odoo (otherwise users get Nginx's 504 while Odoo still works and logs nothing).
    """
    pairs = [
        ("limitTimeCpu", z.limit_time_cpu, "<=", "limitTimeReal", z.limit_time_real),
        ("limitTimeReal", z.limit_time_real, "<=", "limit_time_real_cron", z.limit_time_real_cron),
        ("limit_memory_soft", z.limit_memory_soft, "<=", "limit_memory_hard", z.limit_memory_hard),
        ("limit_memory_soft_gevent", z.limit_memory_soft_gevent, "<=", "limit_memory_hard_gevent",
         z.limit_memory_hard_gevent),
        ("limitTimeReal", z.limit_time_real, "<", "Nginx proxy timeouts", z.proxy_timeout),
    ]
    for low_name, low, op, high_name, high in pairs:
        if not (low <= high if op == "<=" else low < high):
            raise _fail(low_name, low, f"must be {op} {high_name} ({high})")


def _check_admin_ranges(v: dict[str, Any]) -> None:
    """SSH's admin ranges, judged as the union they make (both targets)."""
    if v["allowSshFromAnywhere"]:
        return
    wide = checks.wide_ranges(v["adminCidrs"])
    if wide:
        raise _fail("adminCidrs", v["adminCidrs"],
                    f"together they open SSH to nearly everyone ({'; '.join(wide)}); allowed: ranges covering "
                    f"at most 1/{2 ** checks.WIDE_SHARE_BITS} of IPv4 or IPv6 (a /8), or set "
                    f"allowSshFromAnywhere: true if SSH must really face the world")


def _cross_checks(v: dict[str, Any]) -> None:
    """Rules that involve more than one key."""
    if v["limitTimeCpu"] > v["limitTimeReal"]:
        raise _fail("limitTimeCpu", v["limitTimeCpu"],
                    f"must be <= limitTimeReal ({v['limitTimeReal']}): CPU time cannot exceed wall time")
    if v["odooSource"] == "git":
        if not v["odooGitRepo"]:
            raise _fail("odooGitRepo", "", "required with odooSource=git: the repository to clone, e.g. "
                        "https://github.com/odoo/odoo.git")
        if v["odooGitRepo"].startswith("-"):
            raise _fail("odooGitRepo", v["odooGitRepo"], "must not start with '-' (git would read it as an option)")
    _check_admin_ranges(v)
    if v["domain"] and not v["letsencryptEmail"]:
        raise _fail("letsencryptEmail", "", f"required with domain={v['domain']!r} (Let's Encrypt expiry notices)")
    if v["hostedZoneId"] and not v["domain"]:
        raise _fail("hostedZoneId", v["hostedZoneId"], "needs a domain to create a record for")
    if v["odooSource"] == "archive":
        if not v["odooArchive"]:
            raise _fail("odooArchive", "", "required with odooSource=archive: path of an Odoo source tarball")
        if not Path(v["odooArchive"]).expanduser().is_file():
            raise _fail("odooArchive", v["odooArchive"], "no such file on this machine")
        if not re.search(r"\.(tar\.gz|tgz|tar\.xz|tar\.bz2|tar|zip)$", v["odooArchive"]):
            raise _fail("odooArchive", v["odooArchive"], "expected a .tar.gz, .tgz, .tar.xz, .tar.bz2, .tar or .zip")
    if v["target"] == "host" and v["backupKmsKeyArn"]:
        raise _fail("backupKmsKeyArn", v["backupKmsKeyArn"], "applies to target=aws only (the stack's own bucket)")
    if v["target"] == "host":
        if bool(v["hostVcpus"]) != bool(v["hostMemoryMiB"]):
            raise _fail("hostMemoryMiB" if v["hostVcpus"] else "hostVcpus", 0,
                        "set hostVcpus and hostMemoryMiB together (the existing server's size)")
        if v["hostVcpus"] % v["hostThreadsPerCore"]:
            raise _fail("hostVcpus", v["hostVcpus"], f"a multiple of hostThreadsPerCore={v['hostThreadsPerCore']} "
                        "(vCPUs are cores x threads per core)")
        if not v["host"]:
            raise _fail("host", "", "required with target=host: the address of the existing server")
        if v["firewall"] and not v["adminCidrs"] and not v["allowSshFromAnywhere"]:
            raise _fail("adminCidrs", [], "required with target=host and firewall: true: the CIDR blocks ufw lets "
                        "reach SSH, including the address this machine connects from (or set "
                        "allowSshFromAnywhere: true)")
        if not v["firewall"] and v["adminCidrs"]:
            raise _fail("firewall", False, "adminCidrs on target=host are enforced by ufw: set firewall: true, "
                        "or remove adminCidrs")
        try:
            ipaddress.ip_address(v["host"])
        except ValueError:
            if not _HOSTNAME.match(v["host"]):
                raise _fail("host", v["host"], "expected an IP address or a host name") from None
    if v["target"] == "aws":
        if not v["sshPublicKey"]:
            raise _fail("sshPublicKey", "", "required with target=aws: the public half of sshPrivateKey")
        if not re.match(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$", v["sshPublicKey"]):
            raise _fail("sshPublicKey", v["sshPublicKey"][:40], "expected an OpenSSH public key line (ssh-ed25519 AAAA...)")
        if not v["adminCidrs"] and not v["allowSshFromAnywhere"]:
            raise _fail("adminCidrs", [], "list the CIDR blocks allowed to SSH in (or set allowSshFromAnywhere: true)")
        if v["production"] and v["arch"] == "any":
            raise _fail("arch", "any", "a production AWS stack must pin x86_64 or arm64, so that a resize "
                        "can never move the server to the other CPU architecture")
        if v["sshUser"] != "ubuntu" or v["port"] != 22:
            raise _fail("sshUser" if v["sshUser"] != "ubuntu" else "port", v["sshUser"] if v["sshUser"] != "ubuntu" else v["port"],
                        "target=aws logs in as ubuntu on port 22 (the Ubuntu image's user; the security group opens 22)")
        if v["backupDestination"] != declared_config()["backupDestination"]["default"]:
            raise _fail("backupDestination", v["backupDestination"], "applies to target=host only; aws backs up to its own S3 bucket")


def sizing_for(s: Settings) -> sizing.Sizing:
    """The sizing these settings ask for (already known to succeed after load_settings)."""
    return sizing.size(
        s.users, users_per_worker=s.users_per_worker, instance_type=s.instance_type,
        arch=s.arch, limit_time_real=s.limit_time_real, limit_time_cpu=s.limit_time_cpu,
        host_vcpus=s.host_vcpus if s.target == "host" else 0,
        host_memory_mib=s.host_memory_mib if s.target == "host" else 0,
        host_threads_per_core=s.host_threads_per_core, full_worker_count=s.full_worker_count,
    )
