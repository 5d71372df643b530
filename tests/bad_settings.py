"""Every bad setting the product must refuse, as one table shared by three runners.

The same cases run through `load_settings` (tests/test_settings.py), the whole program
under Pulumi's mocks (tests/test_program_mocks.py) and the real engine's `pulumi
preview` (tests/e2e/test_bad_settings_preview.py). Each case starts from the `local`
stack (target host) and changes what an operator would write; each must stop before
any resource with one line naming the key, the value (cut) and what is allowed.

`over`: settings as the engine hands them (strings; lists as lists).
`yaml`: instead, lines written into the stack file as they are (YAML's own readings).
`secret`: secret settings set with `pulumi config set --secret`.
`shown`: what of the value the message repeats; None for a secret (never repeated).
"""

from __future__ import annotations

from dataclasses import dataclass, field

LONG_EMAIL = "a" * 4990 + "@example.com"  # 5,002 characters


@dataclass(frozen=True)
class Bad:
    id: str
    key: str
    allowed: str
    over: dict = field(default_factory=dict)
    yaml: str = ""
    secret: dict = field(default_factory=dict)
    shown: str | None = ""


CASES = [
    # issue 11.1: SSH open to the world through ranges that together cover a family
    Bad("split-ipv4", "adminCidrs", "allowSshFromAnywhere",
        over={"adminCidrs": ["0.0.0.0/1", "128.0.0.0/1"]}, shown="0.0.0.0/1"),
    Bad("split-ipv6", "adminCidrs", "at most 1/256",
        over={"adminCidrs": ["10.213.0.1/32", "::/1", "8000::/1"]}, shown="8000::/1"),
    Bad("ipv6-global-unicast", "adminCidrs", "at most 1/256",
        over={"adminCidrs": ["10.213.0.1/32", "2000::/4", "3000::/4"]}, shown="2000::/4"),
    Bad("ipv4-three-quarters", "adminCidrs", "allowSshFromAnywhere",
        over={"adminCidrs": ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2"]}, shown="64.0.0.0/2"),
    # issue 11.7: weak secrets, never echoed, no traceback for an empty one
    Bad("password-admin", "adminPassword", "at least 16 characters", secret={"adminPassword": "admin"}, shown=None),
    Bad("password-empty", "adminPassword", "it is empty", secret={"adminPassword": ""}, shown=None),
    Bad("password-short", "adminPassword", "fewer than 16", secret={"adminPassword": "Tr0ub4dor&3x"}, shown=None),
    Bad("password-default-dressed", "adminPassword", "known default",
        secret={"adminPassword": "Password123456789!"}, shown=None),
    Bad("password-repeated", "adminPassword", "repeated", secret={"adminPassword": "odoo1234odoo1234"}, shown=None),
    # issue 11.9: numbers and booleans that read differently to a person and to YAML
    Bad("users-octal", "users", "plain digits", yaml="users: 015", shown="015"),
    Bad("users-underscore", "users", "plain digits", yaml="users: 1_5", shown="1_5"),
    Bad("firewall-yes", "firewall", "true or false", yaml="firewall: yes", shown="yes"),
    Bad("firewall-on", "firewall", "true or false", yaml="firewall: on", shown="on"),
    # issue 11.10: limits that must stay below one another
    Bad("cpu-over-real", "limitTimeCpu", "limitTimeReal",
        over={"limitTimeCpu": "1300", "limitTimeReal": "1200"}, shown="1300"),
    # issue 11.11: git sources
    Bad("git-no-repo", "odooGitRepo", "required with odooSource=git",
        over={"odooSource": "git", "odooGitRepo": ""}, shown="''"),
    Bad("git-ref-option", "odooGitRef", "option", over={"odooSource": "git", "odooGitRef": "--no-tags"},
        shown="--no-tags"),
    Bad("git-ref-upload-pack", "odooGitRef", "option",
        over={"odooSource": "git", "odooGitRef": "--upload-pack=touch /tmp/x"}, shown="--upload-pack"),
    Bad("git-ref-dotdot", "odooGitRef", "check-ref-format", over={"odooSource": "git", "odooGitRef": "main..x"},
        shown="main..x"),
    Bad("git-ref-lock", "odooGitRef", "check-ref-format",
        over={"odooSource": "git", "odooGitRef": "heads/x.lock"}, shown="x.lock"),
    # issue 11.12: caught late with a traceback before
    Bad("cidr-world", "adminCidrs", "allowSshFromAnywhere", over={"adminCidrs": ["0.0.0.0/0"]}, shown="0.0.0.0/0"),
    Bad("backup-dotdot", "backupDestination", "that is /etc", over={"backupDestination": "/srv/../etc"},
        shown="/srv/../etc"),
    Bad("backup-dot", "backupDestination", "without '.'", over={"backupDestination": "/srv/./backups"},
        shown="/srv/./backups"),
    # issue 11.13: say what fits, briefly; cut what is echoed
    Bad("type-nano", "instanceType", "types that fit users=150",
        over={"instanceType": "t3.nano", "users": "150", "hostVcpus": "0", "hostMemoryMiB": "0"}, shown="t3.nano"),
    Bad("long-email", "letsencryptEmail", "e-mail address",
        over={"domain": "erp.example.com", "letsencryptEmail": LONG_EMAIL}, shown="5002 characters"),
    # the host target and SSH
    Bad("host-no-admin-ranges", "adminCidrs", "including the address this machine connects from",
        over={"adminCidrs": []}, shown="[]"),
    Bad("host-ranges-without-firewall", "firewall", "enforced by ufw", over={"firewall": "false"}, shown="False"),
    # earlier ones (README, issue 1..10)
    Bad("users-zero", "users", "allowed 1..720", over={"users": "0"}, shown="0"),
    Bad("users-word", "users", "whole number", over={"users": "sixty"}, shown="sixty"),
    Bad("odoo-16", "odooVersion", "17.0, 18.0, 19.0", over={"odooVersion": "16.0"}, shown="16.0"),
    Bad("bad-domain", "domain", "host name", over={"domain": "not a domain"}, shown="not a domain"),
    Bad("backup-var", "backupDestination", "directory of its own", over={"backupDestination": "/var"}, shown="/var"),
    Bad("addons-relative", "addonsPaths", "absolute path", over={"addonsPaths": ["relative/path"]},
        shown="relative/path"),
    Bad("cidr-garbage", "adminCidrs", "CIDR block", over={"adminCidrs": ["300.1.1.1/8"]}, shown="300.1.1.1/8"),
]

# Values that must never appear in any message (the secrets above).
SECRET_VALUES = sorted({v for c in CASES for v in c.secret.values() if v})


def check_message(case: Bad, text: str) -> str:
    """The one line of `text` that refuses the case's setting, checked; returns it.

    One line names the key and says what is allowed, repeats the value cut (or, for a
    secret, never), is short, and no traceback or secret appears anywhere in `text`.
    """
    assert "Traceback" not in text, text[-3000:]
    lines = [line for line in text.splitlines() if f"setting {case.key}" in line]
    assert lines, f"no line names setting {case.key}:\n{text[-3000:]}"
    line = lines[0]
    assert case.allowed in line, line
    assert len(line) < 500, f"{len(line)} characters: {line[:200]}..."
    if case.shown is None:
        assert "<secret, not shown>" in line, line
    else:
        assert case.shown in line, line
    for secret in SECRET_VALUES:
        if len(secret) >= 6:
            assert secret not in text, f"a secret of case {case.id} is echoed"
    for value in case.secret.values():
        if value:
            assert f"={value!r}" not in text and f"'{value}'" not in text
    return line


def apply_to_stack_text(case: Bad, text: str) -> str:
    """The stack file `text` with the case's settings written in, as an operator would.

    Lines of the keys the case sets are replaced (a YAML mapping must not repeat a key:
    the engine refuses that); `over` values are written as JSON (valid YAML, quoted),
    `yaml` lines as they are.
    """
    import json
    import re

    new = {k: json.dumps(v) for k, v in case.over.items()}
    for line in filter(None, case.yaml.splitlines()):
        k, _, v = line.partition(":")
        new[k.strip()] = v.strip()
    kept = [line for line in text.splitlines()
            if not any(re.match(rf"\s*odoo-pulumi:{re.escape(k)}:", line) for k in new)]
    lines = [f"  odoo-pulumi:{k}: {v}" for k, v in new.items()]
    at = kept.index("config:") + 1  # right under it: a later top-level key may follow the block
    return "\n".join(kept[:at] + lines + kept[at:]) + "\n"
