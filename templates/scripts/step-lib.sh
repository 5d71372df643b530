#!/usr/bin/env bash
# The odoo-pulumi step library: the framework every remote step runs in (errors, progress,
# idempotent file and package helpers, the output guard of secret steps). Shipped once:
# the wait step installs it at /var/lib/odoo-pulumi/step-lib.sh (root 0644) from its own
# script, and every step checks its SHA-256 before sourcing it (odoo_pulumi/steps.py,
# templates/scripts/_step.sh.j2), so the eight scripts do not each carry it. Comment lines
# are left out of the installed copy (steps.strip_shell_comments). Sourced with STEP set.
# shellcheck disable=SC2034
# (variables the steps read)
set -Eeuo pipefail
umask 022
cd /
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l
export LC_ALL=C.UTF-8 LANG=C.UTF-8
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

STATE_DIR=/var/lib/odoo-pulumi
CHANGED=0
ACTION="starting"
APT_UPDATED=0
PUT_FILE_CHANGED=0
MEMBER_CHANGED=0

# Which step failed and doing what: the command text, never expanded values (file
# contents travel in variables, so a failing put_file cannot print them).
on_error() {
    local rc=$1 line=$2 cmd=$3
    echo "odoo-pulumi: ${STEP}: FAILED (exit ${rc}) while ${ACTION} (line ${line}: ${cmd:0:160})" >&2
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

# Say what is being done now; shown if the step fails.
doing() { ACTION=$*; }

# Stop the step with a message (exit 1 without going through the ERR trap twice).
fail() {
    trap - ERR
    echo "odoo-pulumi: ${STEP}: FAILED while ${ACTION}: $*" >&2
    exit 1
}

# Record one change and say what it was.
changed() {
    CHANGED=$((CHANGED + 1))
    echo "odoo-pulumi: ${STEP}: $*"
}

note() { echo "odoo-pulumi: ${STEP}: $*"; }

# put_file PATH OWNER GROUP MODE BASE64: write the decoded content atomically, only
# when content, owner, group or mode differ. Sets PUT_FILE_CHANGED to 1 or 0.
put_file() {
    local path=$1 b64=$5 tmp
    PUT_FILE_CHANGED=0
    tmp=$(temp_beside "$path")
    if ! printf '%s' "$b64" | base64 -d >"$tmp"; then
        rm -f "$tmp"
        fail "cannot decode the content of $path"
    fi
    place_file "$1" "$2" "$3" "$4" "$tmp"
}

# put_staged PATH OWNER GROUP MODE STAGED SHA256: put_file for a program shipped as an
# upload (CopyToRemote, as the SSH user, to STAGED): nothing to do when PATH already
# has that SHA-256 (and owner and mode); otherwise the upload is copied, its copy's hash
# checked, and the copy put in place.
put_staged() {
    local path=$1 owner=$2 group=$3 mode=$4 staged=$5 sha=$6 tmp
    PUT_FILE_CHANGED=0
    if [ -f "$path" ] && [ ! -L "$path" ] && [ "$(sha256sum <"$path")" = "$sha  -" ] \
        && [ "$(stat -c '%U:%G:%a' "$path")" = "$owner:$group:$(printf '%o' "$((8#$mode))")" ]; then
        return 0
    fi
    # A new upload comes only with a new version: one removed since (systemd-tmpfiles ages
    # out /var/tmp) is put back by replacing its CopyToRemote.
    [ -f "$staged" ] || fail "$path differs from this deployment's and its upload $staged is gone: pulumi up --replace <the URN of its CopyToRemote (odoo-upload-...)>"
    tmp=$(temp_beside "$path")
    cat -- "$staged" >"$tmp"
    if [ "$(sha256sum <"$tmp")" != "$sha  -" ]; then
        rm -f "$tmp"
        fail "$path: the upload $staged does not have the SHA-256 $sha"
    fi
    place_file "$path" "$owner" "$group" "$mode" "$tmp"
}

# temp_beside PATH: a new empty temporary file in PATH's directory (created if needed),
# 0600 root until place_file gives it the final owner and mode.
temp_beside() {
    local dir
    dir=$(dirname "$1")
    [ -d "$dir" ] || install -d -m 0755 "$dir"
    mktemp "$dir/.odoo-pulumi.XXXXXXXX"
}

# place_file PATH OWNER GROUP MODE TMP: move TMP to PATH with that owner and mode, unless
# PATH already has that content, owner and mode (then TMP is removed).
place_file() {
    local path=$1 owner=$2 group=$3 mode=$4 tmp=$5 want_mode
    want_mode=$(printf '%o' "$((8#$mode))")
    if [ -f "$path" ] && [ ! -L "$path" ] && cmp -s "$tmp" "$path" \
        && [ "$(stat -c '%U:%G:%a' "$path")" = "$owner:$group:$want_mode" ]; then
        rm -f "$tmp"
        return 0
    fi
    chown "$owner:$group" "$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
    PUT_FILE_CHANGED=1
    changed "wrote $path ($owner:$group $mode)"
}

# put_text PATH OWNER GROUP MODE < content: put_file for text written in this script.
put_text() {
    local b64
    b64=$(base64 -w0)
    put_file "$1" "$2" "$3" "$4" "$b64"
}

# ensure_dir PATH OWNER GROUP MODE: the directory exists with that owner and mode.
ensure_dir() {
    local path=$1 owner=$2 group=$3 mode=$4 want_mode
    want_mode=$(printf '%o' "$((8#$mode))")
    if [ -d "$path" ] && [ "$(stat -c '%U:%G:%a' "$path")" = "$owner:$group:$want_mode" ]; then
        return 0
    fi
    install -d -o "$owner" -g "$group" -m "$mode" "$path"
    changed "directory $path ($owner:$group $mode)"
}

# adopt_owner USER HOME SHELL COMMENT: when USER does not exist yet but HOME does (kept
# on a data volume from an earlier server), create USER as a system user with the uid
# and gid that own HOME, so that the files there stay its own.
adopt_owner() {
    local user=$1 home=$2 shell=$3 comment=$4 uid gid
    id -u "$user" >/dev/null 2>&1 && return 0
    [ -d "$home" ] || return 0
    uid=$(stat -c %u "$home") gid=$(stat -c %g "$home")
    [ "$uid" != 0 ] || return 0
    if getent passwd "$uid" >/dev/null || { getent group "$gid" >/dev/null && [ "$(getent group "$gid" | cut -d: -f1)" != "$user" ]; }; then
        note "uid $uid or gid $gid of $home is taken: $user gets new ids and its files are handed over"
        return 0
    fi
    getent group "$user" >/dev/null || accounts groupadd --system --gid "$gid" "$user"
    accounts useradd --system --uid "$uid" --gid "$gid" --home-dir "$home" --no-create-home \
        --shell "$shell" --comment "$comment" "$user"
    changed "created $user with the ids ($uid:$gid) that own $home"
}

# Accounts are changed by steps that run in parallel (useradd/groupadd lock /etc/passwd
# and /etc/group and give up at once when another holds the lock): one at a time.
accounts() {
    install -d -m 0755 "$STATE_DIR"
    flock -w 300 "$STATE_DIR/accounts.lock" "$@"
}

# ensure_group NAME: a system group NAME exists.
ensure_group() {
    getent group "$1" >/dev/null && return 0
    doing "creating the group $1"
    accounts sh -c 'getent group "$1" >/dev/null || groupadd --system "$1"' sh "$1"
    changed "created the system group $1"
}

# ensure_member USER GROUP: USER has GROUP among its supplementary groups. Sets
# MEMBER_CHANGED to 1 when it was added (running processes of USER do not have it yet).
ensure_member() {
    local user=$1 group=$2
    MEMBER_CHANGED=0
    [[ " $(id -nG "$user") " != *" $group "* ]] || return 0
    doing "adding $user to the group $group"
    accounts usermod -a -G "$group" "$user"
    MEMBER_CHANGED=1
    changed "added $user to the group $group"
}

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# apt-get serialised between parallel steps, waiting for dpkg's own lock (boot-time
# unattended-upgrades) and keeping local changes to configuration files.
apt_get() {
    install -d -m 0755 "$STATE_DIR"
    flock -w 1800 "$STATE_DIR/apt.lock" \
        apt-get -q -y -o DPkg::Lock::Timeout=1200 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

apt_update() {
    doing "apt-get update"
    apt_get update >/dev/null || fail "apt-get update failed"
    APT_UPDATED=1
}

# apt_install PKG...: install those not installed yet (apt-get update first, once).
apt_install() {
    local missing=() p out
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$APT_UPDATED" = 1 ] || apt_update
    doing "installing ${missing[*]}"
    if ! out=$(apt_get install --no-install-recommends "${missing[@]}" 2>&1); then
        echo "$out" | tail -n 20 >&2
        fail "apt-get install ${missing[*]} failed"
    fi
    changed "installed ${missing[*]}"
}

ensure_enabled() {
    systemctl is-enabled --quiet "$1" 2>/dev/null && return 0
    doing "enabling $1"
    systemctl enable --quiet "$1"
    changed "enabled $1"
}

ensure_active() {
    systemctl is-active --quiet "$1" && return 0
    doing "starting $1"
    systemctl start "$1"
    changed "started $1"
}

# psql as the postgres superuser over the socket; the SQL comes on stdin so psql
# variables (-v name=value, :'name') quote values safely.
psql_as_postgres() {
    runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

finish() {
    echo "odoo-pulumi: ${STEP}: changed=${CHANGED}"
}

# --- output guard (for a step that carries a secret) -------------------------------------
# Such a step writes secret files. Whatever fails, and whatever the SSH command provider
# does with the output of a failed command (it repeats all of it in the error, logging on
# or off), nothing secret may reach it: everything the step prints goes through
# guard_output, which passes on only the step's own progress lines ("odoo-pulumi: STEP:
# ..."), with any text of the secret files (SECRET_TEXTS, set by the step) and any long
# base64/hash-like run replaced. The full output, redacted the same way, stays on the
# server (root only).
GUARD_LOG="$STATE_DIR/log/$STEP.log"

redact() {
    local line=$1 s
    for s in "${SECRET_TEXTS[@]}"; do line=${line//"$s"/<secret>}; done
    while [[ $line =~ [A-Za-z0-9+/=\$.]{40,} ]]; do line=${line//"${BASH_REMATCH[0]}"/<redacted>}; done
    printf '%s\n' "$line"
}

guard_output() {
    local line
    install -d -m 0700 "$STATE_DIR/log"
    (umask 077 && : >"$GUARD_LOG")
    while IFS= read -r line || [ -n "$line" ]; do
        line=$(redact "$line")
        printf '%s\n' "$line" >>"$GUARD_LOG"
        case $line in
            "odoo-pulumi: $STEP: FAILED"*) printf '%s\n' "$line" >&2 ;;
            "odoo-pulumi: $STEP: "*) printf '%s\n' "$line" ;;
        esac
    done
}
