"""The protocol between the server and a host agent.

The agent opens every connection. Each sync it reports the state of every VM
it has on disk and receives the full list of VMs the server wants on its host
with their desired state: a level-triggered reconcile, so a lost message or a
restart on either side heals at the next sync.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from gridvm.schemas.base import Wire
from gridvm.schemas.consoles import ConsoleSessionOrder
from gridvm.schemas.hosts import HostLoad, Zone
from gridvm.schemas.vms import LaunchFile, VmMode
from gridvm.schemas.volumes import VolumeAttachment


class HostRegistration(Wire):
    name: str
    address: str
    arch: str
    accelerator: str
    cores: int
    memory_mb: int
    disk_bytes: int
    labels: dict[str, str] = Field(default_factory=dict)
    # The network zones this host serves VMs in.
    zones: list[Zone] = Field(default_factory=lambda: [Zone.trusted, Zone.dmz], min_length=1)


class DesiredState(StrEnum):
    running = "running"
    suspended = "suspended"
    stopped = "stopped"  # power off (ACPI, forced after the grace period); keep a single-mode disk
    deleted = "deleted"  # kill now, delete everything


class LocalState(StrEnum):
    """What the agent sees of a VM on its host."""

    staging = "staging"
    booting = "booting"
    running = "running"
    suspended = "suspended"
    stopping = "stopping"
    stopped = "stopped"  # no QEMU, disk kept (single mode)
    ended = "ended"  # no QEMU, no disk: finished
    failed = "failed"
    deleted = "deleted"


class EndCause(StrEnum):
    poweroff = "poweroff"  # the guest powered itself off
    stopped = "stopped"  # powered off because the server asked
    killed = "killed"  # forced off after the grace period, or deleted
    crashed = "crashed"  # QEMU died
    start_failed = "start_failed"


class RemotePeer(Wire):
    """A vm_to_vm peer of the same deployment running on another host."""

    address: str  # the peer VM's address on its host's zone bridge
    via: str  # its host's uplink address: the next hop of the route to it


class Assignment(Wire):
    vm_id: str
    attempt: int
    boot: int = 1
    desired: DesiredState
    mode: VmMode
    vcpus: int
    memory_mb: int
    disk_bytes: int | None
    image_digest: str
    kernel_digest: str | None
    initrd_digest: str | None
    kernel_cmdline: str | None
    hostname: str
    user_data: str | None
    # Environment of the job (parameter-scan row, GRIDVM_INDEX, ...), put in the seed ISO.
    env: dict[str, str] = Field(default_factory=dict)
    # Size of the raw disk the guest writes its results to (0: no results disk).
    output_bytes: int = 0
    ssh_public_keys: list[str] = Field(default_factory=list)
    # Secrets or files for the seed ISO: fetched from the server when the VM is staged.
    has_launch_files: bool = False
    # Save the (stopped) VM's disk as a new image of this name.
    save_as: str | None = None
    save_id: str | None = None
    # Seconds the guest gets to power off after an ACPI request before it is forced off.
    stop_grace_s: int
    # This boot's VM token, for the seed ISO: the guest reports to the server with it.
    guest_token: str | None = Field(default=None, repr=False)
    # Persistent user disks, after the root disk, the seed ISO and the results disk; the
    # agent makes a volume's file at its first use and never deletes it with the VM.
    volumes: list[VolumeAttachment] = Field(default_factory=list)
    # Site networking: the zone whose bridge the VM's tap joins (set by the zone policy when
    # the VM was requested; None: the agent's first zone), and the VM's own egress whitelist
    # (entries as network.whitelist prints them, validated and resolved by the server).
    zone: Zone | None = None
    egress: list[str] = Field(default_factory=list)
    # VMs of one deployment that both have vm_to_vm may connect to each other.
    deployment_id: str | None = None
    vm_to_vm: bool = False
    # With vm_to_vm: the deployment's other vm_to_vm members running on other hosts.
    remote_peers: list[RemotePeer] = Field(default_factory=list)


class VmReport(Wire):
    vm_id: str
    attempt: int
    boot: int = 1
    state: LocalState
    cause: EndCause | None = None
    detail: str | None = None
    # Exit status of the job (user-data script), read from the results disk.
    exit_status: int | None = None
    # The last save request carried out, and why it failed (None: it was uploaded).
    saved_id: str | None = None
    save_error: str | None = None
    # Site networking: the address the agent gave the VM on its zone bridge, while it has one.
    site_address: str | None = None


class SyncRequest(Wire):
    host: str
    # Site networking: the host's IPv4 address on its uplink (None: user-mode networking).
    uplink_address: str | None = None
    cached_images: list[str] = Field(default_factory=list)
    # None from an agent too old to send it.
    load: HostLoad | None = None
    vms: list[VmReport] = Field(default_factory=list)
    # Long poll: the generation of the last answer; the server answers when the host's
    # generation differs, or after wait_s seconds at the most.
    since: int | None = None
    wait_s: float = Field(default=0.0, ge=0, le=30)
    # Volumes whose files the agent deleted, as the server asked (see delete_volumes).
    deleted_volumes: list[str] = Field(default_factory=list)
    # Site networking: the digest (SyncResponse.zone_egress_digest) of the site whitelists
    # the agent has applied; None with user-mode networking, or before the first apply.
    site_egress_applied: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")


class SyncResponse(Wire):
    generation: int = 0
    assignments: list[Assignment]
    console_offsets: dict[str, int] = Field(default_factory=dict)
    # Users waiting for an attached console of a VM of this host (see schemas.consoles).
    console_sessions: list[ConsoleSessionOrder] = Field(default_factory=list)
    # Volumes of this host being deleted: the agent deletes their files and reports them.
    delete_volumes: list[str] = Field(default_factory=list)
    # The site's egress whitelist of each zone (entries as network.whitelist prints them),
    # added to every VM's own in that zone.
    zone_egress: dict[Zone, list[str]] = Field(default_factory=dict)
    # Names zone_egress as a whole; the agent reports it back once applied.
    zone_egress_digest: str | None = None


class RegistrationOut(Wire):
    host: str
    poll_interval_s: float


class LaunchBundle(Wire):
    """Secrets (decrypted) and per-launch files of one VM, for its seed ISO only."""

    secrets: dict[str, str] = Field(default_factory=dict)  # name -> base64
    files: list[LaunchFile] = Field(default_factory=list)
