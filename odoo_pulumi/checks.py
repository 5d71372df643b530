"""Judgements the settings, the components and the policy pack share, stdlib only.

Each function answers one question about a value an operator wrote (is this set of
address ranges nearly the whole Internet? is this a name git would read as an option?
is this secret a known default?) and returns what is wrong in words, or nothing. No
Pulumi, no YAML: the policy pack imports this module from its own environment.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Any, Iterable

# --- echoing values in messages ------------------------------------------------------------

ECHO_MAX = 60  # characters of a value a message repeats


def cut(value: Any, limit: int = ECHO_MAX) -> str:
    """repr(value), shortened to `limit` characters with the full length said.

    A message must name the value, but a 5,000-character e-mail pasted by mistake
    must not fill the terminal (nor a log) with itself.
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 1]}… ({len(str(value))} characters)"


# --- address ranges ---------------------------------------------------------------------------

# A set of admin ranges larger than this share of its address family is "the Internet":
# a /8 of IPv4 is 16.7 million addresses, more than any office, VPN or provider block an
# administrator logs in from; the same share of IPv6 (a /8) is 32 times smaller than the
# global unicast space (2000::/3), so splitting that space in pieces is caught too.
WIDE_SHARE_BITS = 8


def wide_ranges(cidrs: Iterable[str]) -> list[str]:
    """Why these CIDR blocks, taken together, open to (nearly) a whole address family.

    The union is judged, not each string: 0.0.0.0/1 + 128.0.0.0/1 is all of IPv4 as
    surely as 0.0.0.0/0. Returns one phrase per family whose union covers more than
    1/2^WIDE_SHARE_BITS of it, e.g. "IPv4: 100% (0.0.0.0/0)"; [] when none does.
    Entries that are not CIDR blocks are skipped (they are refused elsewhere).
    """
    by_version: dict[int, list] = {4: [], 6: []}
    for c in cidrs:
        try:
            net = ipaddress.ip_network(str(c).strip(), strict=False)
        except ValueError:
            continue
        by_version[net.version].append(net)
    out = []
    for version, nets in by_version.items():
        if not nets:
            continue
        union = list(ipaddress.collapse_addresses(nets))
        total = 2 ** (32 if version == 4 else 128)
        covered = sum(n.num_addresses for n in union)
        if covered * 2 ** WIDE_SHARE_BITS > total:
            blocks = ", ".join(str(n) for n in union[:4]) + (", ..." if len(union) > 4 else "")
            out.append(f"IPv{version}: {covered * 100 / total:.3g}% ({blocks})")
    return out


def covers(cidrs: Iterable[str], address: str) -> bool:
    """Whether `address` lies in one of `cidrs`."""
    ip = ipaddress.ip_address(address)
    for c in cidrs:
        net = ipaddress.ip_network(str(c), strict=False)
        if net.version == ip.version and ip in net:
            return True
    return False


# --- secrets ----------------------------------------------------------------------------------

SECRET_MIN_LENGTH = 16
# Passwords that every scanner tries first: Odoo's own default (admin), the product's
# names, and the usual suspects. Compared case-insensitively, also with digits and
# punctuation around them removed ("Admin123!" is "admin").
KNOWN_DEFAULTS = frozenset({
    "admin", "administrator", "odoo", "odoo-pulumi", "password", "passw0rd", "changeme", "change-me",
    "secret", "root", "toor", "master", "default", "letmein", "welcome", "qwerty", "azerty",
    "123456", "postgres", "test", "demo", "ubuntu",
})


def weak_secret(value: str) -> str | None:
    """Why a password is too weak to guard an Odoo on the Internet, or None.

    The reason never repeats the value (nor its length: both go into error messages).
    """
    if not value:
        return "it is empty"
    core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", value.lower())
    if value.lower() in KNOWN_DEFAULTS or core in KNOWN_DEFAULTS:
        return "it is a well-known default password"
    if re.fullmatch(r"(.+?)\1+", value):
        return "it is one short pattern repeated"
    if len(value) < SECRET_MIN_LENGTH:
        return f"it has fewer than {SECRET_MIN_LENGTH} characters"
    if len(set(value)) < 6:
        return "it uses fewer than 6 different characters"
    return None


# --- git --------------------------------------------------------------------------------------


def bad_git_ref(ref: str) -> str | None:
    """Why git would not take `ref` as a branch, tag or commit name, or None.

    The rules of `git check-ref-format` (for a one-level name too), plus: nothing that
    starts with '-', which git would read as an option (`--no-tags`, `--upload-pack=...`).
    """
    if not ref:
        return "it is empty"
    if ref.startswith("-"):
        return "it starts with '-' (git would read it as an option)"
    if len(ref) > 200:
        return "it is longer than 200 characters"
    if re.search(r"[\x00-\x20\x7f~^:?*\[\\]", ref):
        return "it holds a space, a control character or one of ~ ^ : ? * [ \\"
    if ".." in ref or "@{" in ref or "//" in ref or ref == "@":
        return "it holds '..', '@{' or '//', or is '@'"
    if ref.startswith("/") or ref.endswith("/") or ref.endswith("."):
        return "it starts or ends with '/' or ends with '.'"
    for part in ref.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return "a part of it starts with '.' or ends with '.lock'"
    return None


# --- paths ------------------------------------------------------------------------------------


def normal_path(path: str) -> str:
    """An absolute path as the server resolves it lexically: /srv/../etc is /etc."""
    return posixpath.normpath("/" + path.lstrip("/")) if path else path


# --- numbers that read one way to a person and another to YAML --------------------------------


def ambiguous_number(text: str) -> str | None:
    """Why a plain scalar from a stack file is not a plain whole number, or None.

    YAML 1.1 (PyYAML, the mocks) reads 015 as 13 (octal), 0x1F as 31, 1_000 as 1000,
    1:30 as 90; other readers take 015 as 15. A person reads 015 as fifteen. Only
    digits without a leading zero (and an optional '-') mean the same to everyone.
    """
    t = text.strip()
    if re.fullmatch(r"-?(0|[1-9][0-9]*)", t):
        return None
    if re.fullmatch(r"[-+]?0[0-9_]+", t):
        return "a leading zero: YAML may read it as an octal number"
    if re.fullmatch(r"[-+]?0[xXoObB][0-9a-fA-F_]+", t):
        return "a hexadecimal, octal or binary prefix"
    if "_" in t or ":" in t:
        return "'_' or ':': YAML may read 1_000 as 1000 and 1:30 as 90"
    if t.startswith("+"):
        return "a '+' sign"
    return "not a whole number"
