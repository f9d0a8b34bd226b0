"""Everything the server process holds, built from its configuration."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from gridvm.common.config import ImagePolicySettings, SchedulingSettings, ServerConfig
from gridvm.common.errors import InvalidInput
from gridvm.images.blobstore import BlobStore
from gridvm.images.debian.apt_cache import AptCache
from gridvm.images.debian.mmdebstrap import validate_mirror
from gridvm.scheduler import FairShareAlgorithm, Policy
from gridvm.services.agents import AgentService
from gridvm.services.builds import BuildService, BuildWorker
from gridvm.services.certification import CertificationService
from gridvm.services.console_sessions import ConsoleSessions
from gridvm.services.consoles import ConsoleStore
from gridvm.services.fairshare import FairShareService
from gridvm.services.guest import GuestService
from gridvm.services.guest_tokens import GuestTokens
from gridvm.services.host_signals import HostSignals
from gridvm.services.hosts import HostService
from gridvm.services.identity import IdentityService
from gridvm.services.image_inspection import InspectionService
from gridvm.services.image_lists import ImageListService
from gridvm.services.images import ImageService
from gridvm.services.quotas import QuotaService
from gridvm.services.reservations import ReservationService
from gridvm.services.results import ResultStore
from gridvm.services.scheduling import SchedulingService
from gridvm.services.secrets import SecretService, load_or_create_key
from gridvm.services.site_egress import SiteEgressService
from gridvm.services.site_templates import SiteTemplates
from gridvm.services.ssh_keys import SshKeyService
from gridvm.services.uploads import UploadService
from gridvm.services.usage_history import UsageHistoryService
from gridvm.services.vms import VmService
from gridvm.services.volumes import VolumeService
from gridvm.services.vulnerabilities import FeedWatcher, VulnFeed
from gridvm.services.web_sessions import WebSessionService
from gridvm.services.zone_policy import SEVERITIES
from gridvm.store.db import Database

log = logging.getLogger(__name__)


def policy_of(settings: SchedulingSettings) -> Policy:
    try:
        algorithm = FairShareAlgorithm(settings.fairshare)
    except ValueError:
        known = ", ".join(a.value for a in FairShareAlgorithm)
        raise InvalidInput(
            f"unknown fair-share algorithm {settings.fairshare!r}", hint=known
        ) from None
    if settings.half_life_s <= 0:
        raise InvalidInput("the fair-share half-life must be positive")
    return Policy(
        spread=-1.0 if settings.pack else 1.0,
        fairshare=algorithm,
        half_life_s=settings.half_life_s,
        backfill=settings.backfill,
    )


def check_image_policy(settings: ImagePolicySettings) -> None:
    if settings.block_severity.lower() not in SEVERITIES[1:]:
        raise InvalidInput(
            f"unknown block severity {settings.block_severity!r}",
            hint="use low, medium, high or critical",
        )
    if (settings.endorser_cert is None) != (settings.endorser_key is None):
        raise InvalidInput(
            "give both the endorser's certificate and its key, or neither",
            hint="--endorser-cert FILE --endorser-key FILE",
        )
    for path in (settings.endorser_cert, settings.endorser_key):
        if path is not None and not path.is_file():
            raise InvalidInput(f"no file {path}", hint="give the endorser's PEM files")


@dataclass
class ServerServices:
    config: ServerConfig
    db: Database
    identity: IdentityService
    images: ImageService
    vms: VmService
    hosts: HostService
    agents: AgentService
    scheduling: SchedulingService
    secrets: SecretService
    ssh_keys: SshKeyService
    guest: GuestService
    quotas: QuotaService
    reservations: ReservationService
    fairshare: FairShareService
    # Core-hours per group over time (from the VMs' runs).
    usage: UsageHistoryService
    certification: CertificationService
    image_lists: ImageListService
    # Attached consoles being set up or in use (their peers are the API's websockets).
    console_sessions: ConsoleSessions[Any]
    builds: BuildService
    inspections: InspectionService
    volumes: VolumeService
    # Resumable uploads of images under way.
    uploads: UploadService
    # Site templates admins add (the starters come from make images).
    templates: SiteTemplates
    # Logins to the web portal.
    web_sessions: WebSessionService

    wakeup: threading.Event
    signals: HostSignals
    site_egress: SiteEgressService

    @classmethod
    def from_config(cls, config: ServerConfig) -> ServerServices:
        policy = policy_of(config.scheduling)
        check_image_policy(config.images)
        if config.build_workers < 1:
            raise InvalidInput(
                f"{config.build_workers} build workers: at least one is needed",
                hint="--build-workers 1 runs builds one after the other",
            )
        if config.build_cache_max_mb < 0:
            raise InvalidInput(
                f"a build cache of {config.build_cache_max_mb} MB",
                hint="--build-cache-max-mb 0 disables the package cache",
            )
        db = Database(config.database)
        identity = IdentityService(db)
        blobs = BlobStore(config.image_dir)
        consoles = ConsoleStore(config.console_dir)
        images = ImageService(db, blobs, config.limits)
        images.vuln_feed = VulnFeed(config.vuln_feed) if config.vuln_feed else None
        ssh_keys = SshKeyService(db)
        site_key = load_or_create_key(config.secrets_key_file)
        secrets = SecretService(db, site_key, config.limits.max_secret_bytes)
        guest_tokens = GuestTokens(site_key)
        results = ResultStore(config.results_dir)
        wakeup = threading.Event()
        signals = HostSignals()
        console_sessions: ConsoleSessions[Any] = ConsoleSessions(
            db, signals.bump, config.console_agent_timeout_s
        )
        return cls(
            config=config,
            db=db,
            identity=identity,
            images=images,
            vms=VmService(
                db,
                config.limits,
                consoles,
                results,
                secrets,
                ssh_keys,
                wakeup.set,
                signals.bump,
                block_severity=config.images.block_severity,
            ),
            hosts=HostService(db, config.host_offline_after_s, config.limits),
            site_egress=SiteEgressService(db, config.limits, signals.bump),
            agents=AgentService(
                db,
                blobs,
                config.limits,
                consoles,
                results,
                images,
                secrets,
                guest_tokens,
                config.scheduler_interval_s,
                console_sessions.waiting,
                bump=signals.bump,
            ),
            scheduling=SchedulingService(
                db, config.host_offline_after_s, signals.bump, config.host_lost_after_s, policy
            ),
            wakeup=wakeup,
            signals=signals,
            secrets=secrets,
            ssh_keys=ssh_keys,
            guest=GuestService(db, guest_tokens),
            quotas=QuotaService(db, wakeup.set),
            reservations=ReservationService(db, wakeup.set),
            fairshare=FairShareService(db, policy),
            usage=UsageHistoryService(db),
            certification=CertificationService(db, config.images),
            image_lists=ImageListService(db, blobs, config, images.vuln_feed),
            console_sessions=console_sessions,
            templates=SiteTemplates(db),
            web_sessions=WebSessionService(db, identity),
            builds=BuildService(
                db,
                images,
                config.starter_dir,
                config.data_dir / "builds",
                tuple(validate_mirror(m) for m in config.certified_repositories),
                package_cache=AptCache(config.build_cache_dir, config.build_cache_max_mb * 2**20)
                if config.build_cache_max_mb
                else None,
            ),
            inspections=InspectionService(db, blobs, images.vuln_feed),
            volumes=VolumeService(db, config.limits, signals.bump),
            uploads=UploadService(db, blobs, config.limits, images),
        )

    def prepare(self) -> None:
        """Migrate the schema, create the first admin, register the site templates."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.config.data_dir.chmod(0o700)
        self.db.migrate()
        self.images.blobs.purge_tmp(older_than_s=0)  # leftovers of uploads cut by a restart
        self.identity.bootstrap(self.config.admin_token_file, self.config.agent_token_file)
        if self.config.starter_dir is not None:
            self.images.register_starters(self.config.starter_dir)


class BackgroundLoops:
    """The scheduler and lease loops, in one daemon thread."""

    def __init__(self, services: ServerServices) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._builds = BuildWorker(services.builds, services.config.build_workers)
        # Inspects images stored before inspection existed; rescans when the feed changes.
        self._feed_watcher = FeedWatcher(
            services.inspections.watch_step, services.config.vuln_feed_interval_s
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gridvm-loops", daemon=True)
        self._thread.start()
        self._builds.start()
        self._feed_watcher.start()

    def stop(self) -> None:
        self._builds.stop()
        self._feed_watcher.stop()
        self._stop.set()
        self.services.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run_once(self) -> None:
        self.services.scheduling.lost_host_pass()
        self.services.scheduling.lease_pass()
        self.services.scheduling.schedule_pass()
        self.services.image_lists.refresh_due()  # in a thread of its own, when due
        self.services.uploads.purge_idle()  # at most every 10 minutes

    def _run(self) -> None:
        interval = self.services.config.scheduler_interval_s
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("scheduler pass failed; trying again")
            # A new request wakes the loop early; otherwise it runs every interval.
            self.services.wakeup.wait(interval)
            self.services.wakeup.clear()
