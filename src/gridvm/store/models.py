"""Database tables. State lives only here and in the image store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # The fair-share tree: a sub-group's usage counts against its parent too.
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"))
    shares: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupUsage(Base):
    """A group's decayed usage (its own VMs, not its sub-groups'), as of ``updated_at``."""

    __tablename__ = "group_usage"
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    core_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    memory_mb_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Quota(Base):
    """Most a user or a group (with its sub-groups) may run at once; None: no limit."""

    __tablename__ = "quotas"
    __table_args__ = (UniqueConstraint("subject_kind", "subject_id", name="uq_quotas_subject"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(8))  # "user" or "group"
    subject_id: Mapped[str] = mapped_column(String(32), index=True)
    cores: Mapped[int | None] = mapped_column(Integer)
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    vms: Mapped[int | None] = mapped_column(Integer)
    # What may be stored: image bytes (as stored, qcow2) and number of images.
    image_bytes: Mapped[int | None] = mapped_column(BigInteger)
    images: Mapped[int | None] = mapped_column(Integer)


class Reservation(Base):
    """Cores kept for a group over a time window, on named hosts or any."""

    __tablename__ = "reservations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), index=True)
    cores: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    hosts: Mapped[list[Any] | None] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    group: Mapped[Group] = relationship(lazy="joined")


class SchedulerLock(Base):
    """One row, locked by each scheduling pass: passes of several servers never overlap."""

    __tablename__ = "scheduler_lock"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    primary_group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def group_ids(self) -> set[str]:
        return {m.group_id for m in self.memberships}


class Membership(Base):
    __tablename__ = "memberships"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    # A group manager publishes images to the group and manages its members.
    manager: Mapped[bool] = mapped_column(default=False)
    user: Mapped[User] = relationship(back_populates="memberships")
    group: Mapped[Group] = relationship(lazy="joined")


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    # sha256 of the secret: tokens are long random strings, so a fast hash is enough.
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    # An agent token is bound to the first host it registers; it may act for that host only.
    host_name: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    user: Mapped[User] = relationship(lazy="joined")


class WebSession(Base):
    """A web portal login. The browser holds the secret in a cookie; the row names the API
    token the user logged in with, so revoking that token ends the session too."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[str] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"), index=True)
    # Sent back by the portal's forms and scripts: a cross-site page cannot read it.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    token: Mapped[Token] = relationship(lazy="joined")


class Secret(Base):
    """A user's credential (token, proxy, licence), encrypted at rest, never shown back."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_secrets_owner_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SshKey(Base):
    __tablename__ = "ssh_keys"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_ssh_keys_owner_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", "version", name="uq_images_owner_name_version"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    # Versions of one owner's name count 1, 2, ...; a run names one or follows the latest.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # How it came: "upload", "save", "build", "template", "imagelist".
    source: Mapped[str] = mapped_column(String(16), default="upload")
    # Hex SHA-512 of the stored qcow2 (image lists name images by it); filled when first needed.
    sha512: Mapped[str | None] = mapped_column(String(128))
    # For an image taken from a subscribed image list: the list and the image's id in it.
    subscription_id: Mapped[str | None] = mapped_column(
        ForeignKey("image_list_subscriptions.id", ondelete="SET NULL")
    )
    list_identifier: Mapped[str | None] = mapped_column(String(64))
    # The SHA-512 the list gave for it (of the file downloaded, before it was stored as
    # qcow2): the same identifier with another checksum is a new version of the image.
    list_sha512: Mapped[str | None] = mapped_column(String(128))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"))
    visibility: Mapped[str] = mapped_column(String(16))
    trust: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(71), index=True)
    format: Mapped[str] = mapped_column(String(16))
    uploaded_format: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    virtual_size: Mapped[int] = mapped_column(BigInteger)
    boot_mode: Mapped[str] = mapped_column(String(16))
    kernel_digest: Mapped[str | None] = mapped_column(String(71))
    initrd_digest: Mapped[str | None] = mapped_column(String(71))
    kernel_cmdline: Mapped[str | None] = mapped_column(Text)
    os: Mapped[str | None] = mapped_column(String(64))
    min_memory_mb: Mapped[int] = mapped_column(Integer, default=64)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner: Mapped[User] = relationship(lazy="joined")
    group: Mapped[Group | None] = relationship(lazy="joined")
    # Its certifications, oldest first (rows are deleted with the image by the database).
    certifications: Mapped[list[ImageCertification]] = relationship(
        lazy="selectin", order_by="ImageCertification.certified_at", viewonly=True
    )


class ImageInspection(Base):
    """What reading an image without booting it found, and the vulnerability scan of that."""

    __tablename__ = "image_inspections"
    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    # "ok", or "unreadable" (with the error): an unreadable image cannot be certified.
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    os_id: Mapped[str | None] = mapped_column(String(32))
    os_version: Mapped[str | None] = mapped_column(String(32))
    os_name: Mapped[str | None] = mapped_column(String(128))
    # [{"name", "version", "arch", "source", "source_version", "kind": "deb"|"rpm"}]
    packages: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Credential sweep: [{"kind", "path", "detail"}]
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    inspected_at: Mapped[datetime] = mapped_column(default=utcnow)
    # [{"id", "package", "source", "installed", "fixed", "severity", "summary", "aliases"}]
    vulns: Mapped[list[Any] | None] = mapped_column(JSON)
    # sha256 of the feed last scanned with: a changed feed means a rescan.
    vuln_feed: Mapped[str | None] = mapped_column(String(71))
    scanned_at: Mapped[datetime | None]
    worst_severity: Mapped[str | None] = mapped_column(String(16))


class ImageCertification(Base):
    """An endorsement of an image: by a security officer, by construction, or by an image list."""

    __tablename__ = "image_certifications"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    # "officer", "construction" or "imagelist"
    source: Mapped[str] = mapped_column(String(16))
    certified_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    certified_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    subscription_id: Mapped[str | None] = mapped_column(
        ForeignKey("image_list_subscriptions.id", ondelete="SET NULL")
    )


class ImageBuild(Base):
    """A recipe build: an operation the server runs in a sandbox; its log is a file kept with it."""

    __tablename__ = "image_builds"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    recipe: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # "queued", "running", "succeeded", "failed"
    state: Mapped[str] = mapped_column(String(16), index=True)
    step: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    # The class decided for the result, and the image once registered.
    trust: Mapped[str | None] = mapped_column(String(16))
    image_id: Mapped[str | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    owner: Mapped[User] = relationship(lazy="joined")


class ImageListSubscription(Base):
    """Another site's signed HEPiX image list this site follows."""

    __tablename__ = "image_list_subscriptions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    # The endorser the list must be signed by, and the CA certificate(s) that vouch for it.
    endorser_dn: Mapped[str] = mapped_column(String(512))
    ca_pem: Mapped[str] = mapped_column(Text)
    list_identifier: Mapped[str | None] = mapped_column(String(64))
    list_expires_at: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Volume(Base):
    """A persistent user disk: lives on one host once first used, attached to at most one VM."""

    __tablename__ = "volumes"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_volumes_owner_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    vm_id: Mapped[str | None] = mapped_column(ForeignKey("vms.id", ondelete="SET NULL"), index=True)
    # "available", "attached", "deleting"
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner: Mapped[User] = relationship(lazy="joined")
    host: Mapped[Host | None] = relationship(lazy="joined")


class Upload(Base):
    """A resumable upload under way: bytes received so far sit in the image store's temp area."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    visibility: Mapped[str] = mapped_column(String(16))
    total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Host(Base):
    __tablename__ = "hosts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    arch: Mapped[str] = mapped_column(String(32))
    accelerator: Mapped[str] = mapped_column(String(16))
    cores: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_bytes: Mapped[int] = mapped_column(BigInteger)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Zones served (None: all); see gridvm.schemas.hosts.Zone.
    zones: Mapped[list[Any] | None] = mapped_column(JSON)
    cached_images: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The load the agent reported at its last sync (HostLoad as JSON).
    load: Mapped[dict[str, Any] | None]
    # Its IPv4 address on the site network (site networking: the next hop to its VMs).
    uplink_address: Mapped[str | None] = mapped_column(String(64))
    # The digest of the site's zone whitelists its agent last applied (None: not reported,
    # or user-mode networking); see gridvm.services.site_egress.
    site_egress_applied: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]


class Deployment(Base):
    __tablename__ = "deployments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    count: Mapped[int] = mapped_column(Integer)
    max_running: Mapped[int | None] = mapped_column(Integer)
    # Group context: [{"name", "count", "provides": [...], "requires": [...]}], or None.
    roles: Mapped[list[Any] | None] = mapped_column(JSON)
    # Placement wishes: all-or-nothing start, affinity between members, host labels.
    gang: Mapped[bool] = mapped_column(default=False)
    affinity: Mapped[str] = mapped_column(String(16), default="none")
    selector: Mapped[str | None] = mapped_column(String(512))
    # Members still pending this long after the request fail, with their last reason.
    queue_timeout_s: Mapped[int | None] = mapped_column(Integer)
    # Site networking: its VMs may open connections to each other (on one host's bridge).
    vm_to_vm: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner: Mapped[User] = relationship(lazy="joined")


class Vm(Base):
    __tablename__ = "vms"
    __table_args__ = (Index("ix_vms_state_created", "state", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"))
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    # Kept for history when the image is deleted after the VM has ended.
    image_id: Mapped[str | None] = mapped_column(
        ForeignKey("images.id", ondelete="SET NULL"), index=True
    )
    image_name: Mapped[str] = mapped_column(String(64))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int | None] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    # The network zone asked for ("trusted", "dmz"); None: the zone of the image's class.
    zone: Mapped[str | None] = mapped_column(String(16))
    # Its egress whitelist (site networking): entries as network.whitelist prints them,
    # names already resolved to addresses when the request was made.
    egress: Mapped[list[Any] | None] = mapped_column(JSON)
    user_data: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Names of the owner's secrets and the per-launch files ({"path", "content_b64"}) that
    # go into this VM's seed ISO; the agent fetches them when it stages the VM.
    launch: Mapped[dict[str, Any]] = mapped_column(default=dict)
    walltime_s: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    desired: Mapped[str] = mapped_column(String(16))
    # Why the VM is being stopped: "user", "expired"; decides its final state.
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    # A stopped single-mode VM's disk lives on one host: it may only start there again.
    pinned_host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id"))
    # attempt: each redeploy (a fresh disk). boot: each start of the same disk. Agent
    # reports name both, so a report about an earlier one is recognised as stale.
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    boot: Mapped[int] = mapped_column(Integer, default=1)
    pending_reason: Mapped[str | None] = mapped_column(Text)
    # When it last began to wait for a host (the request, a redeploy): queue timeouts count
    # from here. None: since created_at.
    queued_at: Mapped[datetime | None]
    # Its priority in the last scheduling pass that saw it waiting.
    priority: Mapped[float | None] = mapped_column(Float)
    exit_reason: Mapped[str | None] = mapped_column(Text)
    exit_status: Mapped[int | None] = mapped_column(Integer)
    results_bytes: Mapped[int | None] = mapped_column(BigInteger)
    save_as: Mapped[str | None] = mapped_column(String(64))
    # Each save request has its own id, so a retry under the same name is a new request.
    save_id: Mapped[str | None] = mapped_column(String(32))
    save_error: Mapped[str | None] = mapped_column(Text)
    # What the guest reported with its VM token (the guest API); reset at each boot.
    role: Mapped[str | None] = mapped_column(String(64))
    ready_at: Mapped[datetime | None]
    guest_ip: Mapped[str | None] = mapped_column(String(64))
    # The address its host's agent gave it on the zone bridge (site networking), while it
    # holds one; the guest cannot change it.
    site_address: Mapped[str | None] = mapped_column(String(64))
    public_keys: Mapped[list[Any] | None] = mapped_column(JSON)
    progress: Mapped[float | None] = mapped_column(Float)
    progress_message: Mapped[str | None] = mapped_column(String(256))
    # Key/value data the VM publishes for its peers (group context).
    published: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    owner: Mapped[User] = relationship(lazy="joined")
    deployment: Mapped[Deployment] = relationship(lazy="joined")
    image: Mapped[Image | None] = relationship(lazy="joined")
    host: Mapped[Host | None] = relationship(lazy="joined", foreign_keys=[host_id])
    # The volumes attached to it (a volume's vm_id); detached when the VM ends.
    volumes: Mapped[list[Volume]] = relationship(
        lazy="selectin", viewonly=True, order_by="Volume.name"
    )


class VmRun(Base):
    """One run of a VM: from its first report of running to when it stopped or ended.

    A VM stopped and started again, or redeployed, has one run per start (its own
    started_at .. ended_at keep only the latest); usage history counts every run.
    ``ended_at`` is None while the run goes on; suspended time counts (the VM holds its
    cores). VMs are never deleted (their rows are the site's record), so a run lives as
    long as its VM.
    """

    __tablename__ = "vm_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vm_id: Mapped[str] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"), index=True)
    host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id"))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    # The VM state it ended in (stopped, done, failed, cancelled, expired), or
    # "redeployed" when a redeploy discarded it while it ran; None while it runs.
    end_state: Mapped[str | None] = mapped_column(String(16))
    host: Mapped[Host | None] = relationship(lazy="joined")


class SiteEgressRule(Base):
    """An entry of a zone's site whitelist that an admin added at run time (the server's
    config file holds the others); every VM of the zone may reach it."""

    __tablename__ = "site_egress_rules"
    __table_args__ = (UniqueConstraint("zone", "entry", name="uq_site_egress_zone_entry"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    zone: Mapped[str] = mapped_column(String(16))
    entry: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
