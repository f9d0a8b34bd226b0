"""Reading a disk image as untrusted data, without booting it or mounting it in the host kernel.

The qcow2 is exported read-only onto a regular file by ``qemu-storage-daemon`` (FUSE), the
file system on it is read in user space with ``debugfs`` (e2fsprogs), addressing files by
inode number only: no name or path from the image ever reaches a command line, and symbolic
links are resolved by us inside the image's own tree, never on the host.
"""

from gridvm.images.inspection.inspect import DiskInspection, Unreadable, inspect_disk

__all__ = ["DiskInspection", "Unreadable", "inspect_disk"]
