"""Settings of the server and the agent, with the site's limits.

Values come from command-line options; every field has a default that suits
a one-machine cloud. Limits protect the site: they are checked when a request
arrives, so a request that could never be honoured is refused at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SiteLimits:
    max_vms_per_request: int = 1024
    max_vcpus_per_vm: int = 64
    max_memory_mb_per_vm: int = 256 * 1024
    max_image_virtual_size: int = 512 * 1024**3
    max_upload_bytes: int = 64 * 1024**3
    max_user_data_bytes: int = 64 * 1024
    max_disk_gb_per_vm: int = 2048
    # The largest persistent user disk (volume) one may create.
    max_volume_bytes: int = 1024 * 1024**3
    # Results a job may leave (the size of its results disk) and all a user may keep.
    max_results_bytes_per_vm: int = 256 * 1024**2
    results_quota_bytes_per_user: int = 10 * 1024**3
    max_secret_bytes: int = 64 * 1024
    max_launch_files_bytes: int = 1024 * 1024
    default_walltime_s: int = 24 * 3600
    max_walltime_s: int = 14 * 24 * 3600
    stop_grace_s: int = 30
    # Egress whitelists (site networking): the site's own per zone ("trusted", "dmz" ->
    # entries like "192.0.2.53:53/udp"), added to every VM's there; whether a VM's entry may
    # be wider than /8 (0.0.0.0/0 above all); and how many entries a VM may ask for.
    zone_egress: dict[str, tuple[str, ...]] = field(default_factory=dict)
    egress_allow_wide: bool = False
    max_egress_entries: int = 32


def default_certified_repositories() -> tuple[str, ...]:
    """The site's configured Debian mirror."""
    mirror = os.environ.get("GRIDVM_DEBIAN_MIRROR") or "http://deb.debian.org/debian"
    return (mirror.rstrip("/"),)


@dataclass(frozen=True)
class SchedulingSettings:
    """The site's scheduling choices (see gridvm.scheduler.Policy for all the knobs)."""

    fairshare: str = "classic"  # or "fair-tree"
    half_life_s: float = 7 * 86400.0
    pack: bool = False  # fill hosts one after the other instead of spreading VMs
    backfill: bool = True


@dataclass(frozen=True)
class ImagePolicySettings:
    """The site's image policy: certification, deploy-time zones, signed image lists."""

    # No image with a vulnerability of this severity or worse is certified or deployed
    # (unknown < low < medium < high < critical).
    block_severity: str = "high"
    # A certification lasts at most this long (and this long when no expiry is given).
    max_certification_days: int = 365
    default_certification_days: int = 90
    # The endorser's X.509 certificate and key that sign the site's image list (PEM files);
    # None: a site CA and an endorser certificate made in the data dir on first use.
    endorser_cert: Path | None = None
    endorser_key: Path | None = None
    # Serve the image list and its images to other sites without a token (off: needs one).
    publish_image_list: bool = False
    # The base URL other sites reach this server at (hv:uri in the list); None: host:port.
    public_url: str | None = None
    # How long an exported image list is valid, and how often subscriptions are refreshed.
    image_list_valid_days: int = 30
    image_list_refresh_s: float = 3600.0


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8750
    starter_dir: Path | None = None
    limits: SiteLimits = field(default_factory=SiteLimits)
    scheduling: SchedulingSettings = field(default_factory=SchedulingSettings)
    images: ImagePolicySettings = field(default_factory=ImagePolicySettings)
    scheduler_interval_s: float = 1.0
    # A host that has not synced for this long is offline and gets no new VMs.
    host_offline_after_s: float = 30.0
    # After this long offline the host is lost: its VMs are failed and their resources freed.
    host_lost_after_s: float = 600.0
    # How long an attached console waits for the VM's host agent to open its end.
    console_agent_timeout_s: float = 10.0
    # Recipe builds: apt repositories whose packages keep a build "certified" (default:
    # the configured Debian mirror, $GRIDVM_DEBIAN_MIRROR), and builds run at once.
    certified_repositories: tuple[str, ...] = field(default_factory=default_certified_repositories)
    build_workers: int = 1
    # The builds' package cache (<data>/build-cache/apt) holds at most this many MB of .debs
    # (least recently used evicted first); 0: no cache, every build downloads every package.
    build_cache_max_mb: int = 2048
    # Vulnerability feed in OSV format (Debian): a file path or an http(s) URL, JSON or zip.
    vuln_feed: str | None = None
    # How often the feed is checked for changes (a change rescans every image).
    vuln_feed_interval_s: float = 300.0

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'gridvm.db'}"

    @property
    def image_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def build_cache_dir(self) -> Path:
        return self.data_dir / "build-cache" / "apt"

    @property
    def console_dir(self) -> Path:
        return self.data_dir / "consoles"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def secrets_key_file(self) -> Path:
        return self.data_dir / "secrets.key"

    @property
    def endorser_dir(self) -> Path:
        """The site CA and image-list endorser made on first use when none is configured."""
        return self.data_dir / "endorser"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def agent_token_file(self) -> Path:
        return self.data_dir / "agent.token"


DEFAULT_ZONE_SUBNETS = {"trusted": "10.64.0.0/24", "dmz": "10.65.0.0/24"}


@dataclass(frozen=True)
class AgentConfig:
    server_url: str
    token: str
    data_dir: Path
    host_name: str
    cores: int | None = None
    memory_mb: int | None = None
    cache_limit_bytes: int = 20 * 1024**3
    poll_interval_s: float = 1.0
    qemu_binary: str = "qemu-system-x86_64"
    labels: dict[str, str] = field(default_factory=dict)
    zones: tuple[str, ...] = ("trusted", "dmz")
    # "user": QEMU user-mode networking (no host changes, no root); "site": a bridge per zone,
    # a tap per VM, the agent's nftables tables (see gridvm.agent.network).
    network: str = "user"
    # Site networking: this host's subnet of each zone (the bridge holds its first address).
    zone_subnets: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ZONE_SUBNETS))
    # The interface VM traffic is masqueraded out of (None: the default route's).
    uplink: str | None = None

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def vm_dir(self) -> Path:
        return self.data_dir / "vms"

    @property
    def volume_dir(self) -> Path:
        """Persistent user disks held on this host, one ``<volume-id>.qcow2`` each."""
        return self.data_dir / "volumes"
