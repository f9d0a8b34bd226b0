#!/bin/sh
# gridvm tiny image: /etc/acpi/PWRF/00000080, run by busybox acpid when the
# ACPI power button is pressed (QMP system_powerdown). Only the first press
# counts; the shutdown itself is /sbin/gridvm-shutdown.
[ -e /run/gridvm-shutting-down ] && exit 0
exec /sbin/gridvm-shutdown "power button pressed, shutting down"
