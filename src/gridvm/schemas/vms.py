"""VMs and deployments (a request for N VMs)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gridvm.schemas.base import Wire
from gridvm.schemas.hosts import Zone
from gridvm.schemas.scheduling import Affinity


class VmMode(StrEnum):
    multi = "multi"  # throw-away: the disk is discarded when the VM ends
    single = "single"  # persistent: the disk is kept, the VM can be stopped and started again


class VmState(StrEnum):
    pending = "pending"
    scheduled = "scheduled"
    staging = "staging"
    booting = "booting"
    running = "running"
    suspended = "suspended"
    stopping = "stopping"
    stopped = "stopped"  # single mode only: powered off, disk kept on its host
    done = "done"
    failed = "failed"
    cancelled = "cancelled"
    expired = "expired"


FINAL_STATES = frozenset({VmState.done, VmState.failed, VmState.cancelled, VmState.expired})
# States in which a VM holds cores and memory on its host.
ACTIVE_STATES = frozenset(
    {
        VmState.scheduled,
        VmState.staging,
        VmState.booting,
        VmState.running,
        VmState.suspended,
        VmState.stopping,
    }
)


class LaunchFile(Wire):
    """A file put at ``path`` in the guest before the job runs (``--file local:/guest/path``)."""

    path: str
    content_b64: str


class RoleSpec(Wire):
    """A role of a group-context deployment: ``count`` members that provide and require
    named capabilities (``head`` x1 provides ``torque``, ``worker`` x4 requires it)."""

    name: str
    count: int = Field(default=1, le=100_000)
    provides: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)


class VmCreate(Wire):
    image: str
    count: int = 1
    name: str | None = None
    vcpus: int = 1
    memory_mb: int = 256
    disk_gb: int | None = None
    user_data: str | None = None
    walltime_s: int | None = None
    mode: VmMode = VmMode.multi
    # A parameter scan: one VM per row; the row's columns reach the job as environment
    # variables. With params, count is their number.
    params: list[dict[str, str]] | None = None
    # At most this many of the deployment's VMs run at once; the rest wait.
    max_running: int | None = None
    # Names of the user's stored secrets to hand to the job (in /run/gridvm/secrets/NAME).
    secrets: list[str] = Field(default_factory=list)
    files: list[LaunchFile] = Field(default_factory=list)
    # Names of SSH public keys on the user's account to install in the guest.
    ssh_keys: list[str] = Field(default_factory=list)
    # A group context: the deployment's members take these roles in order (count is
    # their sum); each VM reaches the members of the roles it requires through the server.
    roles: list[RoleSpec] | None = None
    # Placement: start all members together or none (gang), keep them on one host or on
    # different hosts, only on hosts whose labels match (e.g. "site in (a,b), mem_gb >= 64").
    gang: bool = False
    affinity: Affinity = Affinity.none
    selector: str | None = Field(default=None, max_length=512)
    # Members still waiting this long after the request fail, with the reason they waited.
    queue_timeout_s: int | None = Field(default=None, le=366 * 86400)
    # The network zone to run in; None: from the image's class (site and certified:
    # trusted; user: the DMZ). User images may run only in the DMZ.
    zone: Zone | None = None
    # Persistent user disks (names or ids) to attach; only to a request for one VM.
    volumes: list[str] = Field(default_factory=list, max_length=16)
    # Outbound connections the VMs may open (site networking): ADDRESS|CIDR|NAME:PORT[/udp];
    # names are resolved by the server when the request is made.
    allow_egress: list[str] = Field(default_factory=list)
    # Site networking: the deployment's VMs may connect to each other, on one host and
    # across hosts (routed without NAT, when the hosts' zone subnets do not overlap).
    vm_to_vm: bool = False


class VmOut(Wire):
    id: str
    name: str
    owner: str
    group: str | None
    deployment: str
    index: int
    image: str | None
    image_name: str
    # The version of the image the VM got (a run of NAME resolves to its latest at request time).
    image_version: int | None = None
    vcpus: int
    memory_mb: int
    disk_gb: int | None
    mode: VmMode
    state: VmState
    host: str | None
    pending_reason: str | None
    exit_reason: str | None
    walltime_s: int
    created_at: datetime
    started_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None
    attempt: int
    exit_status: int | None = None
    results_bytes: int | None = None
    # vm save: the name of the image being made from this VM's disk, or why it failed.
    saving_as: str | None = None
    save_error: str | None = None
    # Reported by the guest with its VM token (gridvm-guest ready / progress / publish).
    role: str | None = None
    ready_at: datetime | None = None
    ip: str | None = None
    # Site networking: the address the host's agent gave the VM (its rules allow only that
    # source); None with user-mode networking or before the agent reported it.
    site_address: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    published: dict[str, str] = Field(default_factory=dict)
    # In the last scheduling pass that saw it waiting (higher goes first).
    priority: float | None = None
    zone: Zone | None = None
    # Names of the volumes attached to it.
    volumes: list[str] = Field(default_factory=list)
    # Where it may connect to (site networking): its own whitelist, and its zone's (the
    # site's); together its effective egress rules.
    egress: list[str] = Field(default_factory=list)
    zone_egress: list[str] = Field(default_factory=list)
    # Whether its host's agent has applied the site's current zone whitelists (a change
    # takes a sync to arrive); None when that is not known (no host, user-mode
    # networking); given when one VM is shown.
    zone_egress_applied: bool | None = None
    # How many times it has run (a start after a stop and a redeploy each begin a run);
    # given when one VM is shown, None in listings.
    runs: int | None = None


class VmRunOut(Wire):
    """One run of a VM: from its first report of running to when it stopped or ended."""

    number: int  # 1 for its first run, and so on
    host: str | None
    vcpus: int
    memory_mb: int
    started_at: datetime
    ended_at: datetime | None  # None: running (or suspended) now
    duration_s: int  # until ended_at, or until now
    # The VM state it ended in (stopped, done, failed, cancelled, expired), or
    # "redeployed" when a redeploy discarded it while it ran; None while it runs.
    end_state: str | None


class VmSave(Wire):
    name: str


class DeploymentOut(Wire):
    id: str
    name: str
    owner: str
    count: int
    max_running: int | None = None
    roles: list[RoleSpec] | None = None
    gang: bool = False
    affinity: Affinity = Affinity.none
    selector: str | None = None
    queue_timeout_s: int | None = None
    created_at: datetime
    states: dict[str, int] = Field(default_factory=dict)
    vms: list[VmOut] = Field(default_factory=list)
