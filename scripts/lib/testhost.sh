# Shared settings and functions of the scripts/testhost-* scripts (sourced, never run).
#
# The test host is a throwaway Debian (trixie, the stand-in for Ubuntu 24.04) booted with
# systemd as PID 1 under systemd-nspawn, reachable by SSH at 10.213.0.2 as the sudo user
# `ubuntu`, with a local apt repository served from the host side of its veth. The root
# file system and the repository are built once into the cache by scripts/testhost-build;
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

TH_MACHINE=odoo-testhost
TH_SUITE=trixie
TH_HOST_IP=10.213.0.1
TH_GUEST_IP=10.213.0.2
TH_PREFIX=24
TH_REPO_PORT=8213
TH_USER=ubuntu
TH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TH_CACHE=${ODOO_PULUMI_CACHE:-/var/cache/odoo-pulumi}/testhost
TH_RUN=/run/odoo-pulumi/testhost
TH_KEY=$TH_CACHE/ssh/id_ed25519
TH_KNOWN_HOSTS=$TH_CACHE/ssh/known_hosts
TH_INSTANCE=$TH_CACHE/instance
TH_BOOT_TIMEOUT=${TH_BOOT_TIMEOUT:-180}
TH_STOP_TIMEOUT=${TH_STOP_TIMEOUT:-30}

th_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
th_die() { th_log "error: $*"; exit 1; }

th_require_root() {
    [ "$(id -u)" -eq 0 ] || th_die "must run as root (systemd-nspawn, mounts and veth need it)"
}

# Serialise every test host operation on this machine: there is one test host at a time.
# Re-entrant through TH_LOCKED so testhost-up can call testhost-down and testhost-build.
th_lock() {
    local name=$1
    local file=${TH_RUN%/*}/testhost-$name.lock
    case " ${TH_LOCKED:-} " in *" $name "*) return 0 ;; esac
    mkdir -p "${TH_RUN%/*}"
    exec {TH_LOCK_FD}>"$file"
    flock -w 900 "$TH_LOCK_FD" || th_die "another testhost-* command held $file for 15 minutes"
    export TH_LOCKED="${TH_LOCKED:-} $name"
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
    lower=$(readlink -e "$TH_CACHE/rootfs") || th_die "no built root file system: run scripts/testhost-build"
    mkdir -p "$TH_INSTANCE/upper" "$TH_INSTANCE/work" "$TH_INSTANCE/merged"
    if [ -f "$TH_INSTANCE/lower" ] && [ "$(cat "$TH_INSTANCE/lower")" != "$lower" ]; then
        th_die "the stopped test host's disk was made on $(cat "$TH_INSTANCE/lower"), now $lower is current: run scripts/testhost-up for a fresh one"
    fi
    echo "$lower" >"$TH_INSTANCE/lower"
    th_overlay_mounted && return 0
    mount -t overlay overlay \
        -o "lowerdir=$lower,upperdir=$TH_INSTANCE/upper,workdir=$TH_INSTANCE/work" \
        "$TH_INSTANCE/merged" || th_die "mounting the overlay on $TH_INSTANCE/merged failed"
}

th_unmount_overlay() {
    if th_overlay_mounted; then
        umount "$TH_INSTANCE/merged" || umount -l "$TH_INSTANCE/merged" \
            || th_die "cannot unmount $TH_INSTANCE/merged"
    fi
}

# Host-side name of the container's veth: the peer of host0, found by interface index
# (systemd shortens ve-<machine> when it is longer than 15 characters).
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
    local name=$1 root
    [ -d /run/systemd/system ] && return 0
    for root in $(th_cgroup_roots); do
        [ -d "$root/$name" ] || continue
        find "$root/$name" -depth -type d -exec rmdir {} + 2>/dev/null \
            || th_log "warning: the cgroup $root/$name is not empty yet"
    done
}

th_start_http() {
    local repo pid i
    repo=$(readlink -e "$TH_CACHE/repo") || th_die "no built apt repository: run scripts/testhost-build"
    [ -f "$repo/Packages" ] || th_die "apt repository $repo has no Packages index: run scripts/testhost-build"
    th_daemon "$TH_RUN/http.log" \
        python3 -m http.server "$TH_REPO_PORT" --bind "$TH_HOST_IP" --directory "$repo"
    pid=$TH_DAEMON_PID
    echo "$pid" >"$TH_RUN/http.pid"
    for ((i = 0; i < 100; i++)); do
        if curl -fsS -o /dev/null "http://$TH_HOST_IP:$TH_REPO_PORT/Release" 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || th_die "the apt repository HTTP server exited: $(tail -3 "$TH_RUN/http.log")"
        sleep 0.1
    done
    th_die "the apt repository HTTP server did not answer on $TH_HOST_IP:$TH_REPO_PORT"
}

# Boot the overlay (already mounted) in the background, give the host side of the veth its
# address and start the apt repository server. Does not wait for the boot to finish.
th_boot() {
    local pid leader veth i
    mkdir -p "$TH_RUN"
    # The container gets the unified cgroup hierarchy only, as on Ubuntu 24.04 (this host
    # has cgroup v1 controllers, read-only inside a container anyway).
    SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 TH_CGROUP=odoo-pulumi-$TH_MACHINE \
        th_daemon "$TH_RUN/console.log" systemd-nspawn -q -D "$TH_INSTANCE/merged" -b \
        -M "$TH_MACHINE" --network-veth --register=no --keep-unit --console=read-only
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
    ip addr replace "$TH_HOST_IP/$TH_PREFIX" dev "$veth" || th_die "cannot address $veth"
    ip link set "$veth" up || th_die "cannot bring $veth up"
    th_start_http
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

# Stop the container and the HTTP server by their recorded PIDs; remove the veth if it
# outlived the container. Keeps the disk (overlay upper) and leaves the overlay unmounted.
th_halt() {
    local pid leader veth
    if pid=$(th_http_pid); then th_terminate "$pid" 5; fi
    rm -f "$TH_RUN/http.pid"
    leader=$(th_live_pid leader.pid systemd) || leader=
    if pid=$(th_nspawn_pid); then
        th_terminate "$pid" "$TH_STOP_TIMEOUT"
    fi
    # If nspawn was killed, its container may outlive it: kill its init (and so its PID namespace).
    if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
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
