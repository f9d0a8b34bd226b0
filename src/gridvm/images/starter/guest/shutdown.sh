#!/bin/sh
# gridvm tiny image: /sbin/gridvm-shutdown [MESSAGE [poweroff|reboot]]
# Print MESSAGE as a "gridvm-guest:" line, stop every process (the user-data
# script first of all), flush the root disk, make it read-only and power off
# (or reboot). Used by init after user-data or on poweroff/reboot requests,
# and by the ACPI power button handler.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
: >/run/gridvm-shutting-down
# The line before may be unfinished (a shell prompt, user output): start a new one.
[ -n "$1" ] && printf '\ngridvm-guest: %s\n' "$1" >/dev/console

# The user-data script runs in its own process group: stop all of it.
user_data=$(cat /run/gridvm-user-data.pid 2>/dev/null)
[ -n "$user_data" ] && kill -TERM "-$user_data" 2>/dev/null

# Then everything else except init and this shell (kill -1 spares both).
kill -TERM -1 2>/dev/null
usleep 300000
kill -KILL -1 2>/dev/null
usleep 50000

sync
mount -o remount,ro / 2>/dev/null || echo "gridvm-guest: warning: cannot remount / read-only" >/dev/console
sync
if [ "$2" = reboot ]; then
    reboot -f
else
    poweroff -f
fi
