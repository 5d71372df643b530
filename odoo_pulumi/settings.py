"""The stack's settings, read and validated in one place before any resource exists.

`Pulumi.yaml` declares every key once (type, default, description); `Settings` below
holds one row per key (its attribute, Python type and the rule of what is allowed), and
the rest is derived from those two tables. Any bad value stops the program with one
message naming the key, the value and what is allowed. No Pulumi import: the same code
serves `pulumi up`, the render command, the stack lint and the tests.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from odoo_pulumi import checks, sizing
from odoo_pulumi.instance_types import BY_NAME
# PROJECT, ROOT and declared_config are also imported from here by the program and tests.
from odoo_pulumi.project import PROJECT, ROOT, declared_config, secret_keys  # noqa: F401

SECRET_KEYS = secret_keys()  # adminPassword, adminUserPassword, sshPrivateKey

ODOO_VERSIONS = ("17.0", "18.0", "19.0")
ODOO_SOURCES = ("deb", "git", "archive")
TARGETS = ("aws", "host")
ARCHES = sizing.ARCHES
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
    out = {}
    for key, value in _stack_file_config(path).items():
        ns, _, name = key.partition(":")
        if ns == PROJECT:
            out[name] = value
    return out


def _stack_file_config(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file, every scalar as the text written (libyaml's
    base loader when present: the same reading, ~10x faster, on every preview)."""
    data = yaml.load(path.read_text(), Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader)) or {}
    return dict(data.get("config") or {})


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
# Each rule carries `allowed`, the words the README's settings table shows for it.

Rule = Callable[[str, Any], None]


def _allows(text: str) -> Callable[[Rule], Rule]:
    """Attach to a rule the words that say what it allows (README's settings table)."""
    def mark(rule: Rule) -> Rule:
        rule.allowed = text  # type: ignore[attr-defined]
        return rule

    return mark


def _range(lo: int, hi: int) -> Rule:
    @_allows(f"{lo}..{hi}")
    def check(key: str, v: int) -> None:
        if not lo <= v <= hi:
            raise _fail(key, v, f"allowed {lo}..{hi}")

    return check


def _one_of(choices: tuple) -> Rule:
    @_allows(", ".join(map(str, choices)))
    def check(key: str, v: Any) -> None:
        if v not in choices:
            raise _fail(key, v, "allowed: " + ", ".join(map(str, choices)))

    return check


def _pattern(rx: re.Pattern, what: str, optional: bool = True) -> Rule:
    @_allows(what.removeprefix("expected ") + (" (or empty)" if optional else ""))
    def check(key: str, v: str) -> None:
        if (v or not optional) and not rx.match(v):
            raise _fail(key, v, what)

    return check


@_allows("absolute paths without '..', '.' or '//'")
def _abs_paths(key: str, v: list[str]) -> None:
    for p in v:
        if not re.fullmatch(r"/[A-Za-z0-9._/-]*", p) or checks.normal_path(p) != p.rstrip("/") or "//" in p:
            raise _fail(key, v, f"each entry must be an absolute path without '..', '.' or '//' "
                                f"({checks.cut(p)} is not)")


@_allows("CIDR blocks like 203.0.113.0/24; together at most a /8 unless allowSshFromAnywhere")
def _cidrs(key: str, v: list[str]) -> None:
    for c in v:
        try:
            ipaddress.ip_network(c, strict=False)
        except ValueError:
            raise _fail(key, v, f"each entry must be a CIDR block like 203.0.113.0/24 ({checks.cut(c)} is not)") from None


@_allows("an http(s)://, ssh:// or git@ URL")
def _url(key: str, v: str) -> None:
    if v and not re.match(r"^(https?|ssh|git)://[^\s'\"]+$|^git@[^\s'\"]+$", v):
        raise _fail(key, v, "expected an http(s)://, ssh:// or git@ URL")


@_allows("an http(s):// URL of a package index (or empty)")
def _index_url(key: str, v: str) -> None:
    """A package index is fetched over HTTP(S) by pip; nothing else is one."""
    if v and not re.match(r"^https?://[A-Za-z0-9.\[\]:_-]+(/[^\s'\"]*)?$", v):
        raise _fail(key, v, "expected an http:// or https:// URL of a package index, e.g. https://pypi.example.com/simple")


@_allows("an e-mail address, at most 254 characters (or empty)")
def _email(key: str, v: str) -> None:
    if v and (len(v) > 254 or not _EMAIL.match(v)):  # 254: the longest address SMTP carries
        raise _fail(key, v, "expected an e-mail address like admin@example.com (at most 254 characters)")


@_allows("a branch, tag or commit git check-ref-format allows (or empty)")
def _git_ref(key: str, v: str) -> None:
    why = checks.bad_git_ref(v) if v else None
    if why:
        raise _fail(key, v, f"expected a branch, tag or commit name as git check-ref-format allows ({why})")


# Backups prune old files in their destination: it must be a directory of its own.
SHARED_DIRECTORIES = ("/", "/etc", "/usr", "/var", "/var/lib", "/var/lib/odoo", "/tmp", "/root", "/home")


@_allows("a directory of its own on the server, or s3://bucket/prefix")
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


# --- the table: one row per key --------------------------------------------------------------


def _setting(rule: Rule | None = None, allowed: str | None = None) -> Any:
    """One row of the table: a Settings attribute with the rule of what its key allows
    on its own (rules over several keys: _check_users, _cross_checks)."""
    return dataclasses.field(metadata={"rule": rule, "allowed": allowed or getattr(rule, "allowed", None)})


@dataclass(frozen=True)
class Settings:
    """The validated stack: one attribute per non-secret key of Pulumi.yaml, named after
    it in snake_case (uploadLimitMiB -> upload_limit_mib). An empty value of a
    `str | None` attribute is None (unset); arrays are tuples. Pulumi.yaml holds the
    type, default and description; this table holds the Python type and the rule."""

    stack: str  # the stack's name, not a setting
    target: str = _setting(_one_of(TARGETS))
    users: int = _setting(allowed=f"1..{sizing.max_users()} at the default usersPerWorker "
                                  f"({sizing.max_users(full_worker_count=True)} with fullWorkerCount)")
    users_per_worker: int = _setting(_range(1, 50))
    full_worker_count: bool = _setting()
    instance_type: str | None = _setting(allowed="a catalogued type that fits the users (or empty)")
    arch: str = _setting(_one_of(ARCHES))
    limit_time_cpu: int = _setting(_range(30, 7200))
    limit_time_real: int = _setting(_range(60, 14400))
    odoo_version: str = _setting(_one_of(ODOO_VERSIONS))
    odoo_source: str = _setting(_one_of(ODOO_SOURCES))
    odoo_archive: str | None = _setting(allowed="an existing .tar.gz, .tgz, .tar.xz, .tar.bz2, .tar or .zip")
    odoo_git_repo: str = _setting(_url)
    odoo_git_ref: str = _setting(_git_ref)
    pip_index_url: str | None = _setting(_index_url)
    pip_find_links: str | None = _setting(_allows("an absolute path (or empty)")(
        lambda k, v: _abs_paths(k, [v]) if v else None))
    install_wkhtmltopdf: bool = _setting()
    addons_paths: tuple[str, ...] = _setting(_abs_paths)
    database: str = _setting(_pattern(_DBNAME, "expected lowercase letters, digits and _ starting with a letter "
                                               "(max 63)", False))
    admin_login: str = _setting(_pattern(_LOGIN, "expected an e-mail address like admin@example.com or a simple "
                                                 "login (letters, digits, '.', '_', '-'; at most 64 characters)", False))
    upload_limit_mib: int = _setting(_range(1, 4096))
    domain: str | None = _setting(_pattern(_HOSTNAME, "expected a lowercase host name like erp.example.com"))
    letsencrypt_email: str | None = _setting(_email)
    host: str | None = _setting(allowed="an IP address or a host name (target host)")
    host_vcpus: int = _setting(_range(0, 448))
    host_memory_mib: int = _setting(_range(0, 24 * 1024 * 1024))
    host_threads_per_core: int = _setting(_range(1, 8))
    port: int = _setting(_range(1, 65535))
    ssh_user: str = _setting(_pattern(_SSH_USER, "expected a Unix user name", False))
    ssh_public_key: str | None = _setting(allowed="an OpenSSH public key line (ssh-ed25519 AAAA...)")
    dial_error_limit: int = _setting(_range(-1, 100000))
    timezone: str = _setting(_pattern(_TZ, "expected UTC or an Area/City zone like Europe/Brussels", False))
    locale: str = _setting(_pattern(_LOCALE, "expected a UTF-8 locale like en_US.UTF-8", False))
    postgres_version: int = _setting(_one_of(POSTGRES_VERSIONS))
    firewall: bool = _setting()
    keep_data_on_destroy: bool = _setting()
    ami: str | None = _setting(_pattern(_AMI, "expected an AMI id like ami-0123456789abcdef0"))
    vpc_id: str | None = _setting(_pattern(_VPC, "expected a VPC id like vpc-0123456789abcdef0"))
    subnet_id: str | None = _setting(_pattern(_SUBNET, "expected a subnet id like subnet-0123456789abcdef0"))
    admin_cidrs: tuple[str, ...] = _setting(_cidrs)
    allow_ssh_from_anywhere: bool = _setting()
    root_volume_gib: int = _setting(_range(10, 1024))
    data_volume_gib: int = _setting(_range(10, 16384))
    hosted_zone_id: str | None = _setting(_pattern(_ZONE, "expected a Route 53 zone id like Z0123456789ABC"))
    production: bool = _setting()
    backup_retention_days: int = _setting(_range(1, 3650))
    ebs_snapshots: bool = _setting()
    backup_destination: str = _setting(_backup_destination)
    backup_kms_key_arn: str | None = _setting(_pattern(
        _KMS_KEY_ARN, "expected a KMS key ARN like arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"))

    @property
    def url(self) -> str | None:
        return f"https://{self.domain}" if self.domain else None


def attribute_of(key: str) -> str:
    """The Settings attribute of a Pulumi.yaml key: camelCase to snake_case, units whole."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key.replace("MiB", "Mib").replace("GiB", "Gib")).lower()


# The Python type of each Pulumi.yaml type (an optional string is None when empty).
_PYTHON_TYPES = {"integer": {"int"}, "boolean": {"bool"}, "string": {"str", "str | None"},
                 "array": {"tuple[str, ...]"}}


def _table() -> dict[str, dataclasses.Field]:
    """Pulumi.yaml's non-secret keys, each with its row; refuses a key without a row, a
    row without a key or a row whose type is not the declared one, so that adding or
    changing a setting cannot half-succeed."""
    declared = declared_config()
    rows = {f.name: f for f in dataclasses.fields(Settings) if f.name != "stack"}
    keys = {attribute_of(k): k for k, d in declared.items() if not d.get("secret")}
    if set(rows) != set(keys):
        raise RuntimeError(f"Pulumi.yaml keys without a Settings attribute: {sorted(set(keys) - set(rows))}; "
                           f"attributes without a key: {sorted(set(rows) - set(keys))}")
    wrong = [f"{keys[n]} ({declared[keys[n]]['type']}) is {row.type}" for n, row in rows.items()
             if str(row.type) not in _PYTHON_TYPES[declared[keys[n]]["type"]]]
    if wrong:
        raise RuntimeError(f"Settings attributes of another type than Pulumi.yaml declares: {'; '.join(wrong)}")
    return {keys[name]: row for name, row in rows.items()}


TABLE = _table()
RULES: dict[str, Rule] = {key: row.metadata["rule"] for key, row in TABLE.items() if row.metadata["rule"]}


# --- load_settings and its steps ----------------------------------------------------------


def load_settings(raw: Mapping[str, Any], stack: str, secrets_present: set[str] | None = None,
                  secret_values: Mapping[str, str] | None = None) -> Settings:
    """Validate the raw stack config (project keys without namespace) into Settings.

    `secrets_present` names the secret keys the stack has. `secret_values` (the program
    passes them; the dry run has none) are only judged for strength, never kept nor
    repeated. Cross-key rules run after each key is valid on its own.
    """
    _refuse_unknown(raw, stack)
    v = _each_key_on_its_own(raw)
    _check_users(v)
    _require_secrets(raw, secrets_present)
    _check_secret_strength(declared_config(), secret_values or {})
    _cross_checks(v)
    _check_instance_type(v)
    settings = _settings_from(v, stack)
    try:  # the sizing's own checks (instance type too small, too many users)
        z = sizing_for(settings)
    except sizing.SizingError as e:
        raise SettingsError(f"setting users={settings.users}: {e}") from None
    check_limit_pairs(z)
    return settings


def _unknown_hint(unknown: list[str]) -> str:
    """The declared keys an unknown one was probably meant to be, else all of them."""
    declared = declared_config()
    hints = sorted({m for k in unknown for m in difflib.get_close_matches(str(k), list(declared), n=2)})
    return (f"did you mean {', '.join(hints)}? (every setting is declared in Pulumi.yaml)" if hints
            else f"allowed: {', '.join(sorted(declared))}")


def _refuse_unknown(raw: Mapping[str, Any], stack: str) -> None:
    """A misspelt key would silently fall back to its default: refuse it first."""
    unknown = sorted(set(raw) - set(declared_config()))
    if unknown:
        names = ", ".join(str(k)[:40] for k in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise SettingsError(f"unknown setting(s) {names} in stack {stack!r}; {_unknown_hint(unknown)}")


def _judge(key: str, value: Any) -> Any:
    """One key's raw value, coerced to its declared type and judged by its rule."""
    value = _COERCE[declared_config()[key]["type"]](key, value)
    if key in RULES:
        RULES[key](key, value)
    return value


def _each_key_on_its_own(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every non-secret key, coerced and judged alone, in Pulumi.yaml's order; a key
    left out takes its declared default (a key without one is required)."""
    v: dict[str, Any] = {}
    for key, decl in declared_config().items():
        if decl.get("secret"):
            continue
        if key in raw and raw[key] is not None:
            v[key] = _judge(key, raw[key])
        elif "default" in decl:
            v[key] = _judge(key, decl["default"])
        else:
            raise SettingsError(f"setting {key} is required: {decl['description']}")
    return v


def _check_users(v: Mapping[str, Any]) -> None:
    """users within what one VM serves at the stack's own usersPerWorker and share."""
    upw, full = v["usersPerWorker"], v["fullWorkerCount"]
    top = sizing.max_users(upw, full)
    if not 1 <= v["users"] <= top:
        at = ([f"usersPerWorker={upw}"] if upw != sizing.USERS_PER_WORKER else []) + (
            ["fullWorkerCount: true"] if full else [])
        raise _fail("users", v["users"], f"allowed 1..{top} concurrent users{' at ' + ', '.join(at) if at else ''} "
                                         f"(more needs more than one VM)")


# What the message asking for each secret adds: what it is, how to set it from a file.
_SECRET_HINTS = {
    "adminPassword": ("", ""),
    "adminUserPassword": (" (the password of Odoo's administrator user, adminLogin)", ""),
    "sshPrivateKey": ("", " < ~/.ssh/odoo_ed25519"),
}


def _plain_secret(key: str) -> str:
    return f"setting {key} must be stored as a secret, not in plain text: pulumi config set --secret {key}"


def _require_secrets(raw: Mapping[str, Any], secrets_present: set[str] | None) -> None:
    """Every secret is present and stored encrypted (a secure value is {"secure": ...};
    a plain string in the stack file is a leak, refused by name)."""
    present = set(secrets_present if secrets_present is not None else (k for k in SECRET_KEYS if k in raw))
    for key in SECRET_KEYS:
        if isinstance(raw.get(key), str):
            raise SettingsError(_plain_secret(key))
    for key in SECRET_KEYS:
        if key not in present:
            what, tail = _SECRET_HINTS.get(key, ("", ""))
            raise SettingsError(f"setting {key} is required and must be a secret{what}: "
                                f"pulumi config set --secret {key}{tail}")


def _settings_from(v: Mapping[str, Any], stack: str) -> Settings:
    """The frozen Settings of judged values: empty optional strings become None, arrays
    tuples, and odooGitRef defaults to the odooVersion branch."""
    kwargs: dict[str, Any] = {"stack": stack}
    for key, row in TABLE.items():
        value = v[key]
        if "None" in str(row.type):
            value = value or None
        elif str(row.type).startswith("tuple"):
            value = tuple(value)
        kwargs[row.name] = value
    kwargs["odoo_git_ref"] = kwargs["odoo_git_ref"] or kwargs["odoo_version"]
    return Settings(**kwargs)


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
    """Rules that involve more than one key, in a fixed order (the first fault wins)."""
    if v["limitTimeCpu"] > v["limitTimeReal"]:
        raise _fail("limitTimeCpu", v["limitTimeCpu"],
                    f"must be <= limitTimeReal ({v['limitTimeReal']}): CPU time cannot exceed wall time")
    _check_odoo_source(v)
    _check_admin_ranges(v)
    if v["domain"] and not v["letsencryptEmail"]:
        raise _fail("letsencryptEmail", "", f"required with domain={v['domain']!r} (Let's Encrypt expiry notices)")
    if v["hostedZoneId"] and not v["domain"]:
        raise _fail("hostedZoneId", v["hostedZoneId"], "needs a domain to create a record for")
    _check_archive(v)
    if v["target"] == "host" and v["backupKmsKeyArn"]:
        raise _fail("backupKmsKeyArn", v["backupKmsKeyArn"], "applies to target=aws only (the stack's own bucket)")
    if v["target"] == "host":
        _check_host_target(v)
    if v["target"] == "aws":
        _check_aws_target(v)


def _check_odoo_source(v: dict[str, Any]) -> None:
    """A git install needs a repository git will not read as an option."""
    if v["odooSource"] == "git":
        if not v["odooGitRepo"]:
            raise _fail("odooGitRepo", "", "required with odooSource=git: the repository to clone, e.g. "
                        "https://github.com/odoo/odoo.git")
        if v["odooGitRepo"].startswith("-"):
            raise _fail("odooGitRepo", v["odooGitRepo"], "must not start with '-' (git would read it as an option)")


def _check_archive(v: dict[str, Any]) -> None:
    """An archive install needs a tarball on this machine, in a format it can unpack."""
    if v["odooSource"] == "archive":
        if not v["odooArchive"]:
            raise _fail("odooArchive", "", "required with odooSource=archive: path of an Odoo source tarball")
        if not Path(v["odooArchive"]).expanduser().is_file():
            raise _fail("odooArchive", v["odooArchive"], "no such file on this machine")
        if not re.search(r"\.(tar\.gz|tgz|tar\.xz|tar\.bz2|tar|zip)$", v["odooArchive"]):
            raise _fail("odooArchive", v["odooArchive"], "expected a .tar.gz, .tgz, .tar.xz, .tar.bz2, .tar or .zip")


def _check_host_target(v: dict[str, Any]) -> None:
    """An existing server: its address, its size stated whole, SSH reachable through ufw."""
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


def _check_aws_target(v: dict[str, Any]) -> None:
    """A new EC2 instance: Ubuntu's user and port, a key pair, admin ranges, one arch in production."""
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


# --- the stack lint: every problem of a stack's config, without its secrets ----------------------


@dataclass(frozen=True)
class Problem:
    """One problem of a stack's config: where, the full key, and what is wrong/allowed."""
    where: str
    key: str
    kind: str  # namespace, unknown, plain-secret, value
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.key}: {self.message}"


def lint_config(config: Mapping[str, Any], where: str, *, secrets_marked: bool = True) -> list[Problem]:
    """Every problem of a stack's namespaced config, each key judged on its own.

    The project's keys must be declared in Pulumi.yaml, its secrets stored encrypted
    (`secrets_marked`: a stack file marks them {"secure": ...}; the engine hands a policy
    pack decrypted strings, so there that check is the file's), and each value allowed
    by its key's rule. Other namespaces (aws:, ...) belong to their providers. A secret's
    value is never judged nor repeated.
    """
    declared, problems = declared_config(), []
    for full_key, value in config.items():
        ns, colon, key = str(full_key).partition(":")
        if not colon:
            problems.append(Problem(where, str(full_key), "namespace",
                                    f"no namespace; write {PROJECT}:{full_key} for a setting of this project"))
        elif ns != PROJECT:
            continue
        elif key not in declared:
            problems.append(Problem(where, full_key, "unknown", f"unknown setting; {_unknown_hint([key])}"))
        elif declared[key].get("secret"):
            if secrets_marked and not (isinstance(value, dict) and "secure" in value):
                problems.append(Problem(where, full_key, "plain-secret", _plain_secret(key)))
        elif not (isinstance(value, dict) and "secure" in value):  # an encrypted value: nothing to judge
            try:
                _judge(key, value)
            except SettingsError as e:
                problems.append(Problem(where, full_key, "value", str(e)))
    return problems


def lint_stack_file(path: Path) -> list[Problem]:
    """The problems of one stack file (stacks/Pulumi.<stack>.yaml), scalars as written."""
    where = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    try:
        config = _stack_file_config(path)
    except (yaml.YAMLError, AttributeError) as e:
        return [Problem(where, "config", "yaml", f"not a stack file: {str(e).splitlines()[0]}")]
    return lint_config(config, where)

