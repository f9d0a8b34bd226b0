#!/bin/sh
# gridvm tiny image: /etc/udhcpc/default.script, applies a DHCP lease.
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface"
        ip link set dev "$interface" up
        ;;
    bound | renew)
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
        for gateway in $router; do
            ip route replace default via "$gateway" dev "$interface"
            break
        done
        if [ -n "$dns" ]; then
            for server in $dns; do echo "nameserver $server"; done >/etc/resolv.conf
        fi
        ;;
esac
exit 0
