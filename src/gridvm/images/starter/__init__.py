"""The starter guest image ``tiny``: a busybox guest that boots in a few seconds.

Build it with ``python -m gridvm.images.starter build --out DIR [--force]`` or
:func:`build_tiny`. The result, ``DIR/tiny/``, holds ``disk.qcow2`` (ext4
root file system, 256 MiB virtual), ``vmlinuz`` and ``initrd.img`` (Debian's
cloud kernel and a busybox initramfs) and ``manifest.json``
(:class:`TinyManifest`). A build is skipped when the manifest's
``inputs_sha256`` matches the current inputs (the exact .deb files, the guest
scripts, this code) and all files exist; the image directory is replaced
atomically, so it is always either the old or the new complete image.

Guest contract (what the rest of gridvm may rely on)
----------------------------------------------------
How to start it:

* Direct kernel boot: ``-kernel vmlinuz -initrd initrd.img -append
  <manifest.kernel_cmdline>``, at least ``min_memory_mb`` of memory.
* Root disk: the **first** virtio-blk PCI disk (``/dev/vda``), a qcow2
  overlay whose backing file is ``disk.qcow2`` (``-F qcow2``). It is mounted
  read-write; it must not be shared by two running VMs.
* Seed (optional): a cloud-init NoCloud ISO as a **later** virtio-blk PCI disk
  (raw, read-only): ISO 9660 with Rock Ridge or Joliet, volume label
  ``cidata`` (any case), padded to at least 1 MiB. Files: ``meta-data``
  (simple ``key: value`` lines; ``local-hostname`` is used, quotes are
  stripped, an invalid name is ignored), ``user-data``, ``gridvm-token``
  (the VM token, copied to /run/gridvm/token, 0600); ``network-config``
  is ignored (every NIC gets DHCP).
* Guest channel (optional): a virtio-serial port named ``org.gridvm.guest.0``;
  ``/usr/bin/gridvm-guest`` speaks the framing of
  :mod:`gridvm.agent.guest_relay` on it (ready, progress, publish, peers).
* Network (optional): virtio-net PCI NICs get DHCP (busybox udhcpc), at most
  about 3 s, before the ready line. A NIC without a DHCP server only costs
  that wait.
* Console: ``ttyS0`` (the first ISA serial port) is the console; all markers
  below and the user-data output appear there. Use ``-no-reboot`` so that a
  kernel panic (``panic=-1``) makes QEMU exit instead of looping.

What it does (the guest's /sbin/init, a busybox shell script):

1. mounts /proc, /sys, /dev, /dev/pts, /run and /tmp (tmpfs), loads isofs,
   virtio_net, virtio_console, virtio_rng, button, evdev, starts busybox
   ``acpid``;
2. waits for as many ``/sys/block/vd*`` as there are virtio-blk PCI
   functions (up to 30 s, but only while one is missing), and mounts the
   first ISO 9660 disk labelled cidata read-only at ``/run/cidata``; without
   one it carries on;
3. adds the keys of the seed's ``gridvm-ssh-keys`` (one per line) to
   /root/.ssh/authorized_keys; sets the hostname from ``local-hostname`` (else the last one, else
   ``tiny``) and writes /etc/hostname and /etc/hosts;
4. brings up the network, then prints exactly ``gridvm-guest: ready`` and, with a
   token, runs ``gridvm-guest ready`` in the background;
5. if ``user-data`` starts with ``#!``: runs a copy (``/tmp/user-data``) in
   /root with ``HOME=/root``, ``PATH=/bin:/sbin:/usr/bin:/usr/sbin``, stdin
   /dev/null, stdout and stderr on the console, in its own session, with
   ``GRIDVM_OUTPUT=/output``, ``GRIDVM_SECRETS=/run/gridvm/secrets`` and the
   ``export`` lines of the seed's ``gridvm-env`` (scan parameters,
   ``GRIDVM_INDEX``, ...) in its environment; before it starts, each seed file
   ``gridvm-secret-NAME`` is copied to /run/gridvm/secrets/NAME (tmpfs, 0600)
   and each ``gridvm-file-N`` to the path ``gridvm-files`` gives for N;
   then prints ``gridvm-guest: user-data exited with status N``; if a disk
   with serial ``gridvm-output`` is attached, writes one tar onto it
   (``.gridvm/exit_status`` and ``output/...``) and prints ``gridvm-guest:
   results written``; then stops all processes, syncs, remounts / read-only
   and powers off (QEMU exits);
6. otherwise keeps a root shell on ttyS0 (respawned) until powered off;
7. ACPI power button (QMP ``system_powerdown``), at any time after the
   ready line, also while user-data runs: prints ``gridvm-guest: power
   button pressed, shutting down``, kills the user-data script and all other
   processes, syncs, remounts / read-only and powers off, in under a second.
   Before the ready line the event may be lost: callers should fall back to
   QMP ``quit`` after a timeout;
8. ``poweroff``/``halt``/``reboot`` inside the guest (user-data or console)
   do the same clean shutdown, printing ``gridvm-guest: poweroff requested,
   shutting down`` (or ``reboot requested``; with ``-no-reboot`` QEMU exits);
9. so files written to the root disk survive a clean power-off and are there
   on the next boot from the same overlay.

The markers always start a line of their own (a newline is printed first
where firmware, a prompt or user output may have left a line unfinished).
Other markers: ``gridvm-guest: warning: ...`` (something optional failed),
``gridvm-initramfs: error: ...`` followed by ``gridvm-guest: boot failed``
(the root disk could not be mounted; the guest powers off).
"""

from __future__ import annotations

from .build import build_tiny
from .kmod import module_load_order
from .manifest import TinyManifest, load_manifest

__all__ = ["TinyManifest", "build_tiny", "load_manifest", "module_load_order"]
