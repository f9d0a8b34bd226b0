"""The guest API's use cases: a running VM reports about itself and reads its group
context (like the Nimbus context broker), with nothing but its VM token.

What a VM reports (ready and its address, progress, public keys, published data)
lives on its row and is cleared when it boots again. Its context is every member
of its deployment; it is *complete* once the members it waits for are ready:
those of the roles that provide what its own role requires, or everyone.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridvm.common.errors import InvalidInput, NotFound, PayloadTooLarge, Unauthorized
from gridvm.schemas.guest import (
    ContextWait,
    GuestContext,
    GuestProgress,
    GuestReady,
    GuestSelf,
    Peer,
)
from gridvm.schemas.vms import FINAL_STATES
from gridvm.services.guest_tokens import GuestIdentity, GuestTokens
from gridvm.services.ssh_keys import parse_public_key
from gridvm.store.db import Database
from gridvm.store.models import Vm, utcnow

DATA_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
MAX_VALUE_BYTES = 64 * 1024
MAX_KEYS = 64
MAX_PUBLISHED_BYTES = 64 * 1024
MAX_PUBLIC_KEYS = 16
_IP_RE = re.compile(r"[0-9A-Fa-f.:]{2,45}")
_FINAL = {s.value for s in FINAL_STATES}


class GuestService:
    def __init__(self, db: Database, tokens: GuestTokens) -> None:
        self.db = db
        self.tokens = tokens

    def identify(self, token: str | None) -> GuestIdentity:
        """The VM boot the token speaks for, if that boot is still on."""
        if not token:
            raise Unauthorized(
                "no VM token given", hint="send 'Authorization: Bearer <the VM's token>'"
            )
        ident = self.tokens.verify(token)
        with self.db.session() as s:
            self._vm(s, ident)
        return ident

    def _vm(self, s: Session, ident: GuestIdentity, *, lock: bool = False) -> Vm:
        vm = s.get(Vm, ident.vm_id, with_for_update={"of": Vm} if lock else None)
        if vm is None or (vm.attempt, vm.boot) != (ident.attempt, ident.boot) or vm.state in _FINAL:
            raise Unauthorized(
                "this VM token has expired: its VM has ended or booted again",
                hint="a VM finds its current token in /run/gridvm/token",
            )
        return vm

    def me(self, ident: GuestIdentity) -> GuestSelf:
        with self.db.session() as s:
            return _self(self._vm(s, ident))

    def ready(self, ident: GuestIdentity, body: GuestReady) -> GuestSelf:
        if body.ip is not None and not _IP_RE.fullmatch(body.ip):
            raise InvalidInput(f"{body.ip!r} is not an IP address")
        with self.db.session() as s:
            vm = self._vm(s, ident, lock=True)
            vm.ready_at = vm.ready_at or utcnow()
            vm.guest_ip = body.ip
            return _self(vm)

    def progress(self, ident: GuestIdentity, body: GuestProgress) -> None:
        with self.db.session() as s:
            vm = self._vm(s, ident, lock=True)
            vm.progress = body.percent
            vm.progress_message = body.message

    def set_public_keys(self, ident: GuestIdentity, text: str) -> list[str]:
        """Replace the VM's published public keys with the OpenSSH keys in ``text``."""
        keys = [line.strip() for line in text.splitlines() if line.strip()]
        if len(keys) > MAX_PUBLIC_KEYS:
            raise InvalidInput(f"at most {MAX_PUBLIC_KEYS} public keys, not {len(keys)}")
        for key in keys:
            parse_public_key(key)
        with self.db.session() as s:
            self._vm(s, ident, lock=True).public_keys = keys
        return keys

    def publish(self, ident: GuestIdentity, key: str, value: bytes) -> None:
        _check_key(key)
        if len(value) > MAX_VALUE_BYTES:
            raise PayloadTooLarge(f"a published value is at most {MAX_VALUE_BYTES} bytes")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(
                f"the value of {key!r} is not UTF-8 text", hint="publish text (base64 for binary)"
            ) from None
        with self.db.session() as s:
            vm = self._vm(s, ident, lock=True)
            data = dict(vm.published or {})
            if key not in data and len(data) >= MAX_KEYS:
                raise InvalidInput(f"a VM may publish at most {MAX_KEYS} keys")
            data[key] = text
            total = sum(len(k) + len(v.encode()) for k, v in data.items())
            if total > MAX_PUBLISHED_BYTES:
                raise PayloadTooLarge(
                    f"a VM may publish {MAX_PUBLISHED_BYTES} bytes in all; this would make {total}",
                    hint="publish less, or remove keys with gridvm-guest unpublish",
                )
            vm.published = data

    def unpublish(self, ident: GuestIdentity, key: str) -> None:
        _check_key(key)
        with self.db.session() as s:
            vm = self._vm(s, ident, lock=True)
            data = dict(vm.published or {})
            if data.pop(key, None) is None:
                raise NotFound(f"this VM has published no {key!r}")
            vm.published = data

    def peer_value(self, ident: GuestIdentity, peer: str, key: str) -> str | None:
        """What the member ``peer`` of the VM's deployment published under ``key``."""
        _check_key(key)
        with self.db.session() as s:
            vm = self._vm(s, ident)
            other = s.scalar(
                select(Vm).where(Vm.deployment_id == vm.deployment_id, Vm.name == peer)
            )
            if other is None:
                raise NotFound(f"no VM {peer!r} in this deployment")
            value = (other.published or {}).get(key)
            return None if value is None else str(value)

    def context(self, ident: GuestIdentity, wait: ContextWait) -> GuestContext:
        with self.db.session() as s:
            vm = self._vm(s, ident)
            members = list(
                s.scalars(
                    select(Vm).where(Vm.deployment_id == vm.deployment_id).order_by(Vm.index)
                ).unique()
            )
            roles = vm.deployment.roles or []
            return _context(vm, members, roles, wait)


def _check_key(key: str) -> None:
    if not DATA_KEY_RE.fullmatch(key):
        raise InvalidInput(
            f"{key!r} is not a usable key", hint="1-64 of A-Z a-z 0-9 _ . -, not starting with . -"
        )


def _self(vm: Vm) -> GuestSelf:
    return GuestSelf(
        vm_id=vm.id,
        name=vm.name,
        hostname=vm.name,
        deployment=vm.deployment_id,
        index=vm.index,
        role=vm.role,
        attempt=vm.attempt,
        boot=vm.boot,
    )


def _is_ready(vm: Vm) -> bool:
    """Reported ready in its current boot (a member that has finished since stays ready: what
    it published is still there; its ``state`` tells whether it still runs)."""
    return vm.ready_at is not None


def _context(
    vm: Vm, members: list[Vm], roles: list[dict[str, object]], wait: ContextWait
) -> GuestContext:
    provides: dict[str, list[str]] = {}
    providers_of: dict[str, set[str]] = {}
    requires: list[str] = []
    for role in roles:
        name = str(role["name"])
        for cap in _strings(role.get("provides")):
            providers_of.setdefault(cap, set()).add(name)
        if name == vm.role:
            requires = _strings(role.get("requires"))
    for member in members:
        for role in roles:
            if role["name"] == member.role and _is_ready(member):
                for cap in _strings(role.get("provides")):
                    provides.setdefault(cap, []).append(member.name)
    others = [m for m in members if m.id != vm.id]
    if wait == ContextWait.all:
        awaited = others
    elif wait == ContextWait.required:
        wanted_roles = set().union(*(providers_of.get(cap, set()) for cap in requires))
        awaited = [m for m in others if m.role in wanted_roles]
    else:
        awaited = []
    waiting = sorted({m.role or "deployment" for m in awaited if not _is_ready(m)})
    return GuestContext(
        me=vm.name,
        role=vm.role,
        complete=not waiting,
        waiting_for=waiting,
        provides=provides,
        peers=[_peer(m) for m in others],
        ready_at=vm.ready_at,
    )


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _peer(vm: Vm) -> Peer:
    return Peer(
        name=vm.name,
        role=vm.role,
        hostname=vm.name,
        ip=vm.guest_ip,
        state=vm.state,
        ready=_is_ready(vm),
        public_keys=[str(k) for k in vm.public_keys or []],
        data={str(k): str(v) for k, v in (vm.published or {}).items()},
    )
