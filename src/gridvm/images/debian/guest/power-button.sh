#!/bin/sh
# gridvm Debian guest: /usr/lib/gridvm/power-button, run by acpid for the ACPI
# power button (QMP system_powerdown): a marker on the console, then a clean
# systemd power-off (which stops the user-data job with everything it started).
if [ ! -e /run/gridvm/shutting-down ]; then
    mkdir -p /run/gridvm && : >/run/gridvm/shutting-down
    printf '\ngridvm-guest: power button pressed, shutting down\n' >/dev/console
fi
exec systemctl --no-block poweroff
