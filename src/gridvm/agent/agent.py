"""The host agent: registers, then syncs with the server and reconciles, once a second.

Each round: look at every local VM (QEMU via QMP), ship new console output,
report to the server, receive the wanted state of every VM of this host, and
act; each attached console the server asks for gets a relay thread. Slow
actions (staging and booting) run in a thread pool so one large image download
does not hold up the rest of the host.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from gridvm.agent.console_relay import ConsoleRelays
from gridvm.agent.consoles import ship_console
from gridvm.agent.guest_relay import GuestAnswer, GuestRelays, GuestRequest
from gridvm.agent.host_facts import host_load, host_registration
from gridvm.agent.link import ServerLink
from gridvm.agent.machines import Machines
from gridvm.agent.network import SiteNetwork, holds_network, zone_setups
from gridvm.agent.reconcile import LIVE, Action, Do, Runtime, adoption, plan
from gridvm.agent.records import RecordStore, VmRecord
from gridvm.agent.volumes import VolumeFiles
from gridvm.common.config import AgentConfig
from gridvm.common.errors import GridvmError
from gridvm.hypervisor.qemu_driver import QemuDriver
from gridvm.hypervisor.spec import CONSOLE_LOG_NAME, GUEST_SOCKET_NAME, SERIAL_SOCKET_NAME
from gridvm.images.cache import ImageCache
from gridvm.schemas.agent import LocalState, SyncRequest, SyncResponse, VmReport

log = logging.getLogger(__name__)

MIN_PAUSE_S = 0.02
BUSY_WAIT_S = 0.2
# Stagings (cache, overlay, seed ISO, QEMU start) run at once; most of their time is
# waiting on QEMU and disks, so more than the core count pays off (see bench B2).
STAGING_THREADS = 8
_SLOW = {Do.start, Do.restart, Do.save}


class Agent:
    def __init__(self, config: AgentConfig, link: ServerLink | None = None) -> None:
        self.config = config
        self.link = link or ServerLink(config.server_url, config.token)
        self.registration = host_registration(config)
        self.records = RecordStore(config.vm_dir)
        self.cache = ImageCache(config.cache_dir, config.cache_limit_bytes)
        self.network = (
            SiteNetwork(self.records, zone_setups(config.zones, config.zone_subnets), config.uplink)
            if config.network == "site"
            else None
        )
        self.machines = Machines(
            self.records,
            self.cache,
            QemuDriver(config.qemu_binary),
            self.link.download_blob,
            self.registration.accelerator,
            self.link.upload_results,
            self.link.upload_disk_image,
            self.link.launch_bundle,
            VolumeFiles(config.volume_dir),
            self.network,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=STAGING_THREADS, thread_name_prefix="gridvm-stage"
        )
        self.console_relays = ConsoleRelays(self.link.open_console)
        self._busy: dict[str, Future[None]] = {}
        self._console_offsets: dict[str, int] = {}
        self._generation: int | None = None
        # Volumes whose files were deleted as the server asked, reported at the next sync.
        self._deleted_volumes: list[str] = []
        # The digest of the site whitelists the network rules hold (site networking).
        self._egress_applied: str | None = None
        self._stop = threading.Event()
        self.guest_relays = GuestRelays(self._forward_guest)

    # --- life ---------------------------------------------------------------
    def run(self) -> None:
        """Register and reconcile until stopped; survives the server being away."""
        self.adopt()
        registered = False
        while not self._stop.is_set():
            try:
                if not registered:
                    self.link.register(self.registration)
                    registered = True
                    log.info(
                        "registered host %s with %s", self.config.host_name, self.config.server_url
                    )
                self.round()
            except (GridvmError, OSError) as exc:
                log.warning("sync with the server failed: %s", exc)
                registered = registered and "not registered" not in str(exc)
                self._generation = None
                self._stop.wait(self.config.poll_interval_s)
                continue
            except Exception:
                log.exception("agent round failed")
                self._generation = None
                self._stop.wait(self.config.poll_interval_s)
                continue
            # The sync itself waits for news (long poll); this pause only stops a hot loop.
            self._stop.wait(MIN_PAUSE_S)
        self.guest_relays.stop_all()
        self.console_relays.close_all()
        self._pool.shutdown(wait=True)

    def stop(self) -> None:
        self._stop.set()

    def adopt(self) -> None:
        """On start: keep VMs whose QEMU still runs; end the ones lost while we were away.

        With site networking, the bridges, the live VMs' taps and the rules are put back
        first (one atomic re-apply: the old rules hold until the new ones replace them)."""
        if self.network is not None:
            self.network.setup()
        records = self.records.load_all()
        runtime, disks = self._look(records)
        for vm_id, seen in runtime.items():
            if seen != Runtime.gone:
                log.info("re-adopted VM %s (QEMU %s)", vm_id, seen.value)
        for action in adoption(records, runtime, disks):
            log.warning("agent start: %s VM %s (%s)", action.do.value, action.vm_id, action.state)
            self.machines.apply(action, records[action.vm_id])

    def _look(self, records: dict[str, VmRecord]) -> tuple[dict[str, Runtime], frozenset[str]]:
        """What QEMU says of each live VM, and which VMs in staging or stopped have a disk
        (busy VMs are left out: their worker knows better)."""
        idle = {vm_id: r for vm_id, r in records.items() if vm_id not in self._busy}
        runtime = {vm_id: self.machines.runtime(r) for vm_id, r in idle.items() if r.state in LIVE}
        disks = frozenset(
            vm_id
            for vm_id, r in idle.items()
            if r.state in (LocalState.staging, LocalState.stopped) and self.machines.has_disk(vm_id)
        )
        return runtime, disks

    # --- one round ------------------------------------------------------------
    def round(self) -> SyncResponse:
        self._reap()
        records = self.records.load_all()
        runtime, disks = self._look(records)
        self._relay_guests(records)
        self._ship_consoles(records)
        # Wait for news from the server for at most one poll interval, less while a start is
        # under way (its outcome should be reported soon).
        wait = BUSY_WAIT_S if self._busy else self.config.poll_interval_s
        response = self.link.sync(
            SyncRequest(
                host=self.config.host_name,
                uplink_address=self._uplink_address(),
                cached_images=self.cache.digests(),
                load=host_load(),
                # Busy VMs too: their worker saves each step atomically, so the user sees
                # staging and booting rather than scheduled during a long download.
                vms=[self._report(r) for r in records.values()],
                since=self._generation,
                wait_s=wait,
                deleted_volumes=self._deleted_volumes,
                site_egress_applied=self._egress_applied,
            )
        )
        self._generation = response.generation
        if self.network is not None:
            self.network.set_zone_egress({z.value: e for z, e in response.zone_egress.items()})
            # In force now (set_zone_egress raises rather than keep a whitelist it could
            # not apply): the next sync tells the server.
            self._egress_applied = response.zone_egress_digest
            self.network.set_remote_peers({a.vm_id: a.remote_peers for a in response.assignments})
        self._deleted_volumes = self.machines.volumes.delete(
            response.delete_volumes, _volumes_in_use(records, frozenset(self._busy))
        )
        self._console_offsets = dict(response.console_offsets)
        self.console_relays.open(
            response.console_sessions, functools.partial(_serial_socket, self.records, records)
        )
        wanted = {a.vm_id: a for a in response.assignments}
        busy = frozenset(self._busy) | self.records.broken
        actions = plan(wanted, records, runtime, busy, time.time(), disks)
        for action in actions:
            self._execute(action, records.get(action.vm_id))
        return response

    def _execute(self, action: Action, record: VmRecord | None) -> None:
        if action.do in _SLOW:
            self._busy[action.vm_id] = self._pool.submit(self.machines.apply, action, record)
        else:
            self.machines.apply(action, record)

    def _reap(self) -> None:
        for vm_id, future in list(self._busy.items()):
            if future.done():
                del self._busy[vm_id]
                if future.exception() is not None:
                    log.error("action on %s failed: %s", vm_id, future.exception())

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until no staging or boot is under way (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._busy and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)

    @staticmethod
    def _report(record: VmRecord) -> VmReport:
        return VmReport(
            vm_id=record.vm_id,
            attempt=record.attempt,
            boot=record.boot,
            state=record.state,
            cause=record.cause,
            detail=record.detail,
            exit_status=record.exit_status,
            saved_id=record.saved_id,
            save_error=record.save_error,
            site_address=record.ipv4 if holds_network(record) else None,
        )

    def _uplink_address(self) -> str | None:
        if self.network is None:
            return None
        address = self.network.uplink_address
        return None if address is None else str(address)

    def _relay_guests(self, records: dict[str, VmRecord]) -> None:
        self.guest_relays.track(
            {
                vm_id: self.records.dir_of(vm_id) / GUEST_SOCKET_NAME
                for vm_id, record in records.items()
                if record.state in LIVE
            }
        )

    def _forward_guest(self, request: GuestRequest) -> GuestAnswer:
        status, body = self.link.guest_request(
            request.method, request.path, request.body, request.content_type, request.token
        )
        return GuestAnswer(status, body)

    def _ship_consoles(self, records: dict[str, VmRecord]) -> None:
        for vm_id, record in records.items():
            offset = self._console_offsets.get(vm_id)
            if offset is None:
                continue
            busy = vm_id in self._busy  # its record is its worker's to save
            try:
                self._console_offsets[vm_id] = ship_console(
                    self.records.dir_of(vm_id) / CONSOLE_LOG_NAME,
                    record,
                    offset,
                    functools.partial(self.link.send_console, vm_id),
                    None if busy else self.records.save,
                )
            except (GridvmError, OSError) as exc:
                log.warning("console of %s not sent: %s", vm_id, exc)


def _volumes_in_use(records: dict[str, VmRecord], busy: frozenset[str]) -> frozenset[str]:
    """Volumes of VMs that run, or are being started or stopped, on this host."""
    return frozenset(
        v.id
        for vm_id, r in records.items()
        if vm_id in busy or r.state in LIVE or r.state == LocalState.staging
        for v in r.assignment.volumes
    )


def _serial_socket(store: RecordStore, records: dict[str, VmRecord], vm_id: str) -> Path | None:
    """The serial socket of VM ``vm_id`` if QEMU runs it on this host."""
    record = records.get(vm_id)
    if record is None or record.state not in LIVE:
        return None
    return store.dir_of(vm_id) / SERIAL_SOCKET_NAME
