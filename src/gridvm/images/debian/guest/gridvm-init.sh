#!/bin/bash
# gridvm Debian guest: /usr/lib/gridvm/gridvm-init, run once per boot by
# gridvm-init.service (after udev and systemd-networkd have started).
#
# The NoCloud reader of debian-12-minimal, doing what tiny's init does with the
# seed ISO (label cidata): VM token, SSH keys, hostname, wait for DHCP, print
# "gridvm-guest: ready" and report it over the guest channel, then either run
# the user-data script (launch files and secrets placed first, results written
# to the results disk afterwards) and power off, or start a root shell on the
# serial console. Markers go to /dev/console, each on a line of its own.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022
cd /

SEED=/run/cidata
OUTPUT=/output
SECRETS=/run/gridvm/secrets

say() {
    printf '\ngridvm-guest: %s\n' "$*" >/dev/console
}

# PCI functions with vendor 0x1af4 (virtio) and one of the given device IDs:
# how many disks or NICs to wait for (the drivers bind asynchronously).
count_virtio_pci() {
    local count=0 function vendor device wanted
    for function in /sys/bus/pci/devices/*; do
        read -r vendor <"$function/vendor" 2>/dev/null || continue
        [ "$vendor" = 0x1af4 ] || continue
        read -r device <"$function/device"
        for wanted in "$@"; do
            [ "$device" = "$wanted" ] && count=$((count + 1))
        done
    done
    echo "$count"
}

count_matching() { # GLOB
    local count=0 path
    for path in $1; do
        [ -e "$path" ] && count=$((count + 1))
    done
    echo "$count"
}

wait_for() { # EXPECTED GLOB TENTHS
    local tries=0
    while [ "$(count_matching "$2")" -lt "$1" ] && [ "$tries" -lt "$3" ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
}

mount_seed() {
    # virtio-blk: 0x1001 (transitional), 0x1042 (modern)
    wait_for "$(count_virtio_pci 0x1001 0x1042)" "/sys/block/vd*" 300
    local device
    # One blkid run for all disks: the first ISO 9660 disk labelled cidata (any case).
    for device in $(blkid -t TYPE=iso9660 -o device /dev/vd* 2>/dev/null); do
        [ "$(blkid -s LABEL -o value "$device" | tr 'A-Z' 'a-z')" = cidata ] || continue
        mkdir -p "$SEED"
        mount -t iso9660 -o ro "$device" "$SEED" || say "warning: cannot mount seed disk $device"
        return 0
    done
}

meta_data_value() { # KEY: value of a simple "key: value" line in meta-data
    [ -f "$SEED/meta-data" ] || return 0
    sed -n "s/^[[:space:]]*$1[[:space:]]*:[[:space:]]*//p" "$SEED/meta-data" |
        head -n 1 | tr -d "\"'\r" | sed 's/[[:space:]]*$//'
}

set_hostname() {
    local name
    name=$(meta_data_value local-hostname)
    [ -n "$name" ] || name=$(cat /etc/hostname 2>/dev/null)
    if [[ -z "$name" || "$name" == *[!A-Za-z0-9.-]* ]]; then
        [ -n "$name" ] && say "warning: ignoring invalid hostname '$name'"
        name=debian
    fi
    hostname "$name"
    echo "$name" >/etc/hostname
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
        "$name" >/etc/hosts
}

install_vm_token() {
    [ -f "$SEED/gridvm-token" ] || return 0
    mkdir -p -m 0700 /run/gridvm
    (umask 077 && cp "$SEED/gridvm-token" /run/gridvm/token && chmod 0600 /run/gridvm/token)
}

install_ssh_keys() {
    [ -f "$SEED/gridvm-ssh-keys" ] || return 0
    mkdir -p -m 0700 /root/.ssh
    touch /root/.ssh/authorized_keys
    local key
    while read -r key; do
        [ -n "$key" ] && ! grep -qxF "$key" /root/.ssh/authorized_keys &&
            echo "$key" >>/root/.ssh/authorized_keys
    done <"$SEED/gridvm-ssh-keys"
    chmod 0600 /root/.ssh/authorized_keys
}

# Site networking: the agent gave the VM a fixed address (gridvm-net: address=A/P,
# gateway=G, nameserver=N lines). A .network file in /run that sorts before the DHCP one
# wins for the NIC; networkd applies it when restarted (networkctl reload needs D-Bus,
# which this image has not). Returns 1 if there is none.
static_network() {
    [ -f "$SEED/gridvm-net" ] || return 1
    local key value address="" gateway="" servers="" tries=0
    while IFS='=' read -r key value; do
        case "$key" in
            address) address=$value ;;
            gateway) gateway=$value ;;
            nameserver) servers="$servers $value" ;;
        esac
    done <"$SEED/gridvm-net"
    if [ -z "$address" ]; then
        say "warning: no address in gridvm-net"
        return 0
    fi
    mkdir -p /run/systemd/network
    {
        printf '[Match]\nType=ether\n\n[Network]\nAddress=%s\n' "$address"
        [ -n "$gateway" ] && printf 'Gateway=%s\n' "$gateway"
        printf 'LinkLocalAddressing=no\nIPv6AcceptRA=no\n'
    } >/run/systemd/network/10-gridvm-static.network
    systemctl restart systemd-networkd.service
    while ! ip -4 -o addr show | grep -qF " ${address} " && [ "$tries" -lt 50 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    ip -4 -o addr show | grep -qF " ${address} " || say "warning: static address $address not up"
    for value in $servers; do echo "nameserver $value"; done >/etc/resolv.conf
    return 0
}

# systemd-networkd runs DHCP on every Ethernet NIC; wait a little for an address
# (about 5 s at most, and only if the VM has a NIC), as tiny does.
wait_for_network() {
    local nics tries=0 lease line servers=""
    nics=$(count_virtio_pci 0x1000 0x1041)
    [ "$nics" -gt 0 ] || return 0
    while ! compgen -G "/run/systemd/netif/leases/*" >/dev/null && [ "$tries" -lt 50 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    # networkd keeps each lease in a file; without systemd-resolved, resolv.conf is ours.
    for lease in /run/systemd/netif/leases/*; do
        [ -f "$lease" ] || continue
        while IFS= read -r line; do
            [[ "$line" == DNS=* ]] && servers="$servers ${line#DNS=}"
        done <"$lease"
    done
    if [ -z "$servers" ] && ! compgen -G "/run/systemd/netif/leases/*" >/dev/null; then
        say "warning: no DHCP lease on an interface"
        return 0
    fi
    for line in $servers; do echo "nameserver $line"; done >/etc/resolv.conf
}

report_ready() {
    [ -f /run/gridvm/token ] || return 0
    setsid gridvm-guest ready >/run/gridvm/ready.log 2>&1 </dev/null &
}

runnable_user_data() {
    [ -f "$SEED/user-data" ] && [ "$(head -c 2 "$SEED/user-data")" = "#!" ]
}

results_disk() {
    local d
    for d in /sys/block/vd*; do
        [ "$(cat "$d/serial" 2>/dev/null)" = gridvm-output ] && { echo "/dev/${d##*/}"; return 0; }
    done
    return 1
}

write_results() { # EXIT-STATUS
    local dev
    dev=$(results_disk) || return 0
    mkdir -p /.gridvm
    echo "$1" >/.gridvm/exit_status
    if tar -c -f "$dev" -C / .gridvm "${OUTPUT#/}" 2>/run/gridvm-results.err; then
        say "results written"
    else
        say "warning: results not written: $(head -c 200 /run/gridvm-results.err)"
    fi
    sync
}

place_launch_files() {
    local f n path
    for f in "$SEED"/gridvm-secret-*; do
        [ -f "$f" ] || continue
        mkdir -p -m 0700 "$SECRETS"
        install -m 0600 "$f" "$SECRETS/${f##*/gridvm-secret-}"
    done
    [ -f "$SEED/gridvm-files" ] || return 0
    while IFS=$'\t' read -r n path; do
        mkdir -p "$(dirname "$path")" && cp "$SEED/gridvm-file-$n" "$path" ||
            say "warning: could not place $path"
    done <"$SEED/gridvm-files"
}

run_user_data() {
    place_launch_files
    install -m 0755 "$SEED/user-data" /run/gridvm-user-data
    mkdir -p "$OUTPUT"
    cd /root || cd /
    # The job's environment (scan parameters, GRIDVM_INDEX, ...) comes from the seed.
    env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        TERM=linux USER=root LOGNAME=root LANG=C.UTF-8 \
        GRIDVM_OUTPUT="$OUTPUT" GRIDVM_SECRETS="$SECRETS" \
        setsid sh -c '[ -f "$1" ] && . "$1"; exec /run/gridvm-user-data' gridvm-job \
        "$SEED/gridvm-env" </dev/null >/dev/console 2>&1 &
    wait $!
    local status=$?
    cd /
    say "user-data exited with status $status"
    write_results "$status"
    systemctl --no-block poweroff
}

mkdir -p -m 0700 /run/gridvm
mount_seed
install_vm_token
install_ssh_keys
set_hostname
static_network || wait_for_network
say ready
report_ready
if runnable_user_data; then
    run_user_data
else
    systemctl --no-block start serial-getty@ttyS0.service
fi
exit 0
