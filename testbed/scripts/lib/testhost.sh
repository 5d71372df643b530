# shellcheck shell=bash disable=SC2034  # sourced: the settings are used by the scripts
# Shared settings and functions of the testbed/scripts/testhost-* scripts (sourced, never run).
#
# The test host is a throwaway Debian (trixie, the stand-in for Ubuntu 24.04) booted with
# systemd as PID 1 under systemd-nspawn, reachable by SSH at 10.213.0.2 as the sudo user
# `ubuntu`, with a local apt repository served from a bridge at 10.213.0.1. The root
# file system and the repository are built once into the cache by testbed/scripts/testhost-build;
# every boot runs on an overlay on top of that cached tree, so each test host starts clean.
#
# Layout:
#   $TH_CACHE/rootfs-<hash>/   debootstrapped tree (never booted directly: overlay lower dir);
#                              renamed into place only once complete
#   $TH_CACHE/repo-<hash>/     local apt repository (Packages, Packages.gz, Release, *.deb)
#   $TH_CACHE/rootfs, repo     symlinks to the current ones
#   $TH_CACHE/ssh/             client key pair and host key of the test host (not in git)
#   $TH_CACHE/instance/        the running test host's disk: overlay upper/work/merged
#   $TH_RUN/                   PIDs, veth name and logs of the running test host
# docs/testbed.md explains the whole.
#
# Slots: ODOO_PULUMI_TESTHOST_SLOT=N (1..99; default 0) runs an independent test host
# beside the default one (machine odoo-testhost-N at 10.213.N.2, bridge odoo-th-brN,
# instance-N/, /run/odoo-pulumi/testhost-N/), for engineers sharing one machine. Every
# testhost-* command acts on the slot of its environment. CI uses slot 0.

TH_SLOT=${ODOO_PULUMI_TESTHOST_SLOT:-0}
case $TH_SLOT in
[0-9] | [1-9][0-9]) ;;
*)
    echo "ODOO_PULUMI_TESTHOST_SLOT must be a number from 0 to 99, not '$TH_SLOT'" >&2
    exit 2
    ;;
esac
TH_SUITE=trixie
TH_PREFIX=24
TH_REPO_PORT=8213
TH_WHEEL_PORT=8214
TH_USER=ubuntu
TH_HOST_IP=10.213.$TH_SLOT.1
TH_GUEST_IP=10.213.$TH_SLOT.2
TH_BRIDGE=odoo-th-br$TH_SLOT
TH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd) # the repository
TH_CACHE=${ODOO_PULUMI_CACHE:-/var/cache/odoo-pulumi}/testhost
TH_KEY=$TH_CACHE/ssh/id_ed25519
# Wheels built by testbed/scripts/build-wheels, one PEP 503 index per requirements file.
TH_WHEELS=${ODOO_PULUMI_CACHE:-/var/cache/odoo-pulumi}/wheels
TH_KNOWN_HOSTS=$TH_CACHE/ssh/known_hosts
if [ "$TH_SLOT" = 0 ]; then
    TH_MACHINE=odoo-testhost
    TH_RUN=/run/odoo-pulumi/testhost
    TH_INSTANCE=$TH_CACHE/instance
else
    TH_MACHINE=odoo-testhost-$TH_SLOT
    TH_RUN=/run/odoo-pulumi/testhost-$TH_SLOT
    TH_INSTANCE=$TH_CACHE/instance-$TH_SLOT
fi
TH_BOOT_TIMEOUT=${TH_BOOT_TIMEOUT:-180}
TH_STOP_TIMEOUT=${TH_STOP_TIMEOUT:-30}

th_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
th_die() { th_log "error: $*"; exit 1; }

# Refuse to write into anything but a test host's tree (never the machine's own /).
th_require_tree() {
    case $1 in
    "" | / | //*) th_die "internal error: refusing to configure '$1' as a test host tree" ;;
    esac
    [ -x "$1/usr/bin/apt-get" ] && [ -d "$1/etc/systemd" ] || th_die "internal error: $1 is not a root file system"
}

th_require_root() {
    [ "$(id -u)" -eq 0 ] || th_die "must run as root (systemd-nspawn, mounts and veth need it)"
}

# Serialise the operations on one test host (slot), or the builds of the shared cache.
# Re-entrant through TH_LOCKED so testhost-up can call testhost-down and testhost-build.
th_lock() {
    local name=$1
    local file=${TH_RUN%/*}/testhost-$name.lock
    [ "$name" = build ] || file=$TH_RUN.lock
    th_guard_route
    case " ${TH_LOCKED:-} " in *" $name "*) return 0 ;; esac
    mkdir -p "$TH_RUN"
    exec {TH_LOCK_FD}>"$file"
    flock -w 900 "$TH_LOCK_FD" || th_die "another testhost-* command held $file for 15 minutes"
    export TH_LOCKED="${TH_LOCKED:-} $name"
}

# 10.213.0.0/16 is unreachable from this machine except through a test host's bridge (the
# more specific 10.213.N.0/24 of a running slot). Without this guard, a connection to a
# test host that is not up would follow the default route out of the machine. The route
# is left in place on purpose: it only ever turns such a mistake into "no route to host".
th_guard_route() {
    ip route replace unreachable 10.213.0.0/16 || th_die "cannot add the guard route for 10.213.0.0/16"
}

# Lines of a package list without comments or blanks.
th_packages() { sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$1"; }

# ssh to the test host as ubuntu with the test key; extra arguments are the remote command.
th_ssh() {
    ssh -i "$TH_KEY" -p 22 \
        -o BatchMode=yes -o ConnectTimeout=3 -o LogLevel=ERROR \
        -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$TH_KNOWN_HOSTS" \
        "$TH_USER@$TH_GUEST_IP" "$@"
}

# PID from a pid file, printed only if that process is alive and its command line
# contains the expected word (guards against a recycled PID).
th_live_pid() {
    local file=$TH_RUN/$1 word=$2 pid
    [ -s "$file" ] || return 1
    pid=$(cat "$file")
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$word" || return 1
    echo "$pid"
}

th_nspawn_pid() { th_live_pid nspawn.pid systemd-nspawn; }
th_http_pid() { th_live_pid http.pid http.server; }
th_wheels_pid() { th_live_pid wheels.pid http.server; }
th_is_running() { th_nspawn_pid >/dev/null; }

# TERM a process, wait up to $2 seconds, then KILL it; returns once it is gone.
th_terminate() {
    local pid=$1 timeout=$2 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    th_log "process $pid ignored TERM for ${timeout}s: sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    th_die "process $pid survived KILL"
}

th_overlay_mounted() { mountpoint -q "$TH_INSTANCE/merged"; }

# Mount the overlay of the current cached root file system; the upper dir is the disk
# of the test host and survives testhost-stop/testhost-start.
th_mount_overlay() {
    local lower
    lower=$(readlink -e "$TH_CACHE/rootfs") || th_die "no built root file system: run testbed/scripts/testhost-build"
    mkdir -p "$TH_INSTANCE/upper" "$TH_INSTANCE/work" "$TH_INSTANCE/merged"
    if [ -f "$TH_INSTANCE/lower" ] && [ "$(cat "$TH_INSTANCE/lower")" != "$lower" ]; then
        th_die "the stopped test host's disk was made on $(cat "$TH_INSTANCE/lower"), now $lower is current: run testbed/scripts/testhost-up for a fresh one"
    fi
    echo "$lower" >"$TH_INSTANCE/lower"
    if ! th_overlay_mounted; then
        mount -t overlay overlay \
            -o "lowerdir=$lower,upperdir=$TH_INSTANCE/upper,workdir=$TH_INSTANCE/work" \
            "$TH_INSTANCE/merged" || th_die "mounting the overlay on $TH_INSTANCE/merged failed"
    fi
    [ "$TH_SLOT" = 0 ] || th_write_net_config "$TH_INSTANCE/merged" "$TH_HOST_IP" "$TH_GUEST_IP"
}

# The files of a root file system $1 that name the addresses: its static address $3 on
# host0, no DNS, and apt pointed at the local repository on $2 only. The build writes them
# for slot 0; other slots rewrite them on their overlay.
th_write_net_config() {
    local r=$1 host_ip=$2 guest_ip=$3
    th_require_tree "$r"
    rm -f "$r/etc/resolv.conf"
    echo "# odoo-pulumi test host: no DNS, the only reachable address is $host_ip" >"$r/etc/resolv.conf"
    cat >"$r/etc/systemd/network/10-host0.network" <<EOF
# odoo-pulumi test host: static address on the veth from systemd-nspawn, no default route.
[Match]
Name=host0

[Network]
Address=$guest_ip/$TH_PREFIX
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
    rm -f "$r/etc/apt/sources.list" "$r"/etc/apt/sources.list.d/*
    echo "deb [trusted=yes] http://$host_ip:$TH_REPO_PORT ./" >"$r/etc/apt/sources.list.d/odoo-pulumi-testhost.list"
}

th_unmount_overlay() {
    if th_overlay_mounted; then
        umount "$TH_INSTANCE/merged" || umount -l "$TH_INSTANCE/merged" \
            || th_die "cannot unmount $TH_INSTANCE/merged"
    fi
}

# Host-side name of the container's veth: the peer of host0, found by interface index
# (systemd shortens vb-<machine> when it is longer than 15 characters).
th_find_veth() {
    local leader=$1 peer
    peer=$(nsenter -t "$leader" -n ip -o link show host0 2>/dev/null \
        | sed -n 's/^[0-9]*: host0@if\([0-9]*\):.*/\1/p') || return 1
    [ -n "$peer" ] || return 1
    ip -o link show | awk -F': ' -v idx="$peer" '$1 == idx { sub(/@.*/, "", $2); print $2 }'
}

# The container's PID 1 as seen from the host: the child of systemd-nspawn.
th_find_leader() {
    local nspawn=$1 child
    for child in $(cat "/proc/$nspawn/task/$nspawn/children" 2>/dev/null); do
        echo "$child"
        return 0
    done
    return 1
}

# Start "$@" detached (own session), logging to $1's file, without inheriting any open
# descriptor but stdio (a lock descriptor kept open by a daemon would block every later
# testhost-* command). Sets TH_DAEMON_PID.
th_daemon() {
    local log=$1 fd
    shift
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        [ -z "${TH_CGROUP:-}" ] || th_enter_cgroup "$TH_CGROUP"
        exec setsid "$@"
    ) </dev/null >"$log" 2>&1 &
    TH_DAEMON_PID=$!
}

# Move the calling shell ($BASHPID) into a cgroup of its own, named $1, in the systemd
# hierarchies of a host whose PID 1 is not systemd. systemd-nspawn --keep-unit puts its
# container under <its own cgroup>/payload: two containers started from the root cgroup
# would share /payload, and each one's systemd would then wait for the other's processes
# (seen: stopping user@1000.service took 30 s). No-op on a host run by systemd.
th_enter_cgroup() {
    local name=$1 root
    [ -d /run/systemd/system ] && return 0
    for root in $(th_cgroup_roots); do
        mkdir -p "$root/$name" && echo "$BASHPID" >"$root/$name/cgroup.procs" \
            || th_die "cannot move into the cgroup $root/$name"
    done
}

# The cgroup hierarchies systemd-nspawn uses on this host: the unified one and, on a
# cgroup v1 host, the name=systemd one.
th_cgroup_roots() {
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        echo /sys/fs/cgroup
        return 0
    fi
    [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && echo /sys/fs/cgroup/unified
    [ "$(stat -fc %T /sys/fs/cgroup/systemd 2>/dev/null)" = cgroupfs ] && echo /sys/fs/cgroup/systemd
    return 0
}

# Remove the (empty) cgroups th_enter_cgroup made for $1 once its processes are gone.
th_remove_cgroup() {
    local name=$1 root i
    [ -d /run/systemd/system ] && return 0
    for root in $(th_cgroup_roots); do
        for ((i = 0; i < 30; i++)); do
            [ -d "$root/$name" ] || break
            find "$root/$name" -depth -type d -exec rmdir {} + 2>/dev/null || sleep 0.1
        done
        [ ! -d "$root/$name" ] || th_log "warning: the cgroup $root/$name is not empty yet"
    done
}

th_start_http() {
    local repo pid i
    repo=$(readlink -e "$TH_CACHE/repo") || th_die "no built apt repository: run testbed/scripts/testhost-build"
    [ -f "$repo/Packages" ] || th_die "apt repository $repo has no Packages index: run testbed/scripts/testhost-build"
    # Run from inside the repository: testhost-build's prune keeps a repository that a
    # server's working directory is in (--directory alone leaves the cwd elsewhere, and
    # another slot's build would remove the repository from under a running host).
    th_daemon "$TH_RUN/http.log" \
        env -C "$repo" python3 -m http.server "$TH_REPO_PORT" --bind "$TH_HOST_IP" --directory "$repo"
    pid=$TH_DAEMON_PID
    echo "$pid" >"$TH_RUN/http.pid"
    th_wait_http "http://$TH_HOST_IP:$TH_REPO_PORT/Release" "$pid" "the apt repository" "$TH_RUN/http.log"
}

# Wait until a server this script started answers URL; stop with its log's tail if it exits.
th_wait_http() {
    local url=$1 pid=$2 what=$3 log=$4 i
    for ((i = 0; i < 100; i++)); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || th_die "$what HTTP server exited: $(tail -3 "$log")"
        sleep 0.1
    done
    th_die "$what HTTP server did not answer on $url"
}

# The PEP 503 indexes of testbed/scripts/build-wheels (all of them: each under its own key), for
# pip on the test host: http://10.213.N.1:8214/<key>/simple/. Static files, like the apt
# repository's, and only on the bridge.
th_start_wheels() {
    local pid
    mkdir -p "$TH_WHEELS"
    th_daemon "$TH_RUN/wheels.log" \
        python3 -m http.server "$TH_WHEEL_PORT" --bind "$TH_HOST_IP" --directory "$TH_WHEELS"
    pid=$TH_DAEMON_PID
    echo "$pid" >"$TH_RUN/wheels.pid"
    th_wait_http "http://$TH_HOST_IP:$TH_WHEEL_PORT/" "$pid" "the wheel index" "$TH_RUN/wheels.log"
}

# The host side of the test host's network: a bridge holding 10.213.0.1 and the HTTP
# servers of the apt repository and of the wheel indexes bound to it. They live from
# testhost-up to testhost-down, across testhost-stop/start: while the container is
# stopped, 10.213.0.0/24 stays routed to the (empty) bridge, so connections to the test
# host fail on this machine instead of following the default route out of it. Idempotent.
th_net_up() {
    if ! ip link show "$TH_BRIDGE" >/dev/null 2>&1; then
        ip link add "$TH_BRIDGE" type bridge || th_die "cannot create the bridge $TH_BRIDGE"
    fi
    ip addr replace "$TH_HOST_IP/$TH_PREFIX" dev "$TH_BRIDGE" || th_die "cannot address $TH_BRIDGE"
    ip link set "$TH_BRIDGE" up || th_die "cannot bring $TH_BRIDGE up"
    th_http_pid >/dev/null || th_start_http
    th_wheels_pid >/dev/null || th_start_wheels
}

th_net_down() {
    local pid
    if pid=$(th_http_pid); then th_terminate "$pid" 5; fi
    rm -f "$TH_RUN/http.pid"
    if pid=$(th_wheels_pid); then th_terminate "$pid" 5; fi
    rm -f "$TH_RUN/wheels.pid"
    if ip link show "$TH_BRIDGE" >/dev/null 2>&1; then
        ip link del "$TH_BRIDGE" || th_die "cannot delete the bridge $TH_BRIDGE"
    fi
}

# Boot the overlay (already mounted) in the background, its veth on the bridge of
# th_net_up. Does not wait for the boot to finish.
th_boot() {
    local pid leader veth i
    mkdir -p "$TH_RUN"
    # The container gets the unified cgroup hierarchy only, as on Ubuntu 24.04 (this host
    # has cgroup v1 controllers, read-only inside a container anyway).
    SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 TH_CGROUP=odoo-pulumi-$TH_MACHINE \
        th_daemon "$TH_RUN/console.log" systemd-nspawn -q -D "$TH_INSTANCE/merged" -b \
        -M "$TH_MACHINE" --network-bridge="$TH_BRIDGE" --register=no --keep-unit \
        --console=read-only
    pid=$TH_DAEMON_PID
    echo "$pid" >"$TH_RUN/nspawn.pid"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || th_die "systemd-nspawn exited at once: $(tail -5 "$TH_RUN/console.log")"
        leader=$(th_find_leader "$pid") && veth=$(th_find_veth "$leader") && [ -n "$veth" ] && break
        sleep 0.1
    done
    [ -n "${veth:-}" ] || th_die "the container's veth did not appear within 10 s"
    echo "$leader" >"$TH_RUN/leader.pid"
    echo "$veth" >"$TH_RUN/veth"
}

# Wait until sshd answers and systemd says the boot is over (running or degraded).
th_wait_ready() {
    local deadline state
    deadline=$((SECONDS + TH_BOOT_TIMEOUT))
    while ((SECONDS < deadline)); do
        th_is_running || th_die "the container stopped while booting: $(tail -5 "$TH_RUN/console.log")"
        state=$(th_ssh timeout 20 systemctl is-system-running --wait 2>/dev/null) || true
        case $state in
        running) return 0 ;;
        degraded)
            th_log "warning: systemd is degraded; failed units: $(th_ssh systemctl --failed --no-legend --plain | awk '{print $1}' | xargs)"
            return 0
            ;;
        esac
        sleep 0.5
    done
    th_die "the test host was not ready within ${TH_BOOT_TIMEOUT}s (last state: ${state:-no ssh answer}); console: $TH_RUN/console.log"
}

# Stop the container by its recorded PID (a clean shutdown: systemd-nspawn turns TERM into
# a halt of the container) and unmount its disk, which is kept. The bridge and the HTTP
# server stay (th_net_down removes them).
th_halt() {
    local pid leader veth
    leader=$(th_live_pid leader.pid systemd) || leader=
    if pid=$(th_nspawn_pid); then
        th_terminate "$pid" "$TH_STOP_TIMEOUT"
    fi
    # If nspawn had to be killed, its container may outlive it: kill its init, and with
    # it the whole PID namespace (TERM would only make systemd re-execute itself).
    if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
        th_log "the container's init $leader outlived systemd-nspawn: sending KILL"
        kill -KILL "$leader" 2>/dev/null || true
        th_terminate "$leader" 5
    fi
    rm -f "$TH_RUN/nspawn.pid" "$TH_RUN/leader.pid"
    th_remove_cgroup "odoo-pulumi-$TH_MACHINE"
    if [ -s "$TH_RUN/veth" ]; then
        veth=$(cat "$TH_RUN/veth")
        if ip link show "$veth" >/dev/null 2>&1; then ip link del "$veth" || true; fi
        rm -f "$TH_RUN/veth"
    fi
    th_unmount_overlay
}

th_ready_line() {
    echo "host=$TH_GUEST_IP port=22 user=$TH_USER key=$TH_KEY"
}
