"""The agent's HTTP connection to the server (the agent opens every connection)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from gridvm.common.errors import GridvmError, ToolFailed
from gridvm.schemas.agent import (
    HostRegistration,
    LaunchBundle,
    RegistrationOut,
    SyncRequest,
    SyncResponse,
)
from gridvm.schemas.consoles import MAX_MESSAGE_BYTES

API = "/api/v1/agent"
GUEST_API = "/api/v1"
# Guests may long-poll the server for five minutes (their group context).
GUEST_TIMEOUT_S = 330.0
log = logging.getLogger(__name__)


class ServerLink:
    def __init__(self, server_url: str, token: str, timeout: float = 30.0) -> None:
        self._ws_base = "ws" + server_url.rstrip("/").removeprefix("http")
        self._auth = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=server_url.rstrip("/"),
            headers=self._auth,
            timeout=timeout,
        )
        # Guest requests carry the guest's own VM token, never the agent's.
        # Each VM may hold a long poll open: room for many at once, so one VM's wait never
        # queues another's report behind the pool.
        self._guest_http = httpx.Client(
            base_url=server_url.rstrip("/"),
            timeout=GUEST_TIMEOUT_S,
            limits=httpx.Limits(max_connections=2048, max_keepalive_connections=32),
        )

    def close(self) -> None:
        self._http.close()
        self._guest_http.close()

    def guest_request(
        self, method: str, path: str, body: bytes, content_type: str, token: str
    ) -> tuple[int, bytes]:
        """Pass one guest-channel request to the guest API as it is: (status, body)."""
        response = self._guest_http.request(
            method,
            GUEST_API + path,
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        )
        return response.status_code, response.content

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        try:
            body = response.json()
            message = body.get("message", response.text)
        except ValueError:
            message = response.text
        raise GridvmError(f"server answered {response.status_code}: {message}")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._check(self._http.request(method, path, **kwargs))
        except httpx.HTTPError as exc:
            raise GridvmError(f"cannot reach the server at {self._http.base_url}: {exc}") from exc

    def register(self, registration: HostRegistration) -> RegistrationOut:
        response = self._send("POST", f"{API}/register", json=registration.model_dump(mode="json"))
        return RegistrationOut.model_validate(response.json())

    def sync(self, request: SyncRequest) -> SyncResponse:
        response = self._send("POST", f"{API}/sync", json=request.model_dump(mode="json"))
        return SyncResponse.model_validate(response.json())

    def send_console(self, vm_id: str, offset: int, data: bytes) -> int:
        response = self._send(
            "PUT", f"{API}/vms/{vm_id}/console", params={"offset": offset}, content=data
        )
        return int(response.json()["size"])

    def upload_results(self, vm_id: str, tar: Path) -> None:
        """Send a VM's results tar (streamed from the file)."""
        with tar.open("rb") as f:
            self._send("PUT", f"{API}/vms/{vm_id}/results", content=f, timeout=None)

    def launch_bundle(self, vm_id: str) -> LaunchBundle:
        """The VM's secrets and per-launch files (only for its seed ISO)."""
        return LaunchBundle.model_validate(self._send("GET", f"{API}/vms/{vm_id}/launch").json())

    def upload_disk_image(self, vm_id: str, disk: Path) -> None:
        """Send a saved VM's flattened disk (streamed from the file)."""
        with disk.open("rb") as f:
            self._send("PUT", f"{API}/vms/{vm_id}/disk-image", content=f, timeout=None)

    def open_console(self, session_id: str) -> ClientConnection:
        """This host's end of an attached console session (a websocket to the server)."""
        path = f"{API}/console-sessions/{session_id}"
        try:
            return connect(
                self._ws_base + path,
                additional_headers=self._auth,
                open_timeout=self._timeout,
                max_size=MAX_MESSAGE_BYTES,
                compression=None,
                legacy=True,
            )
        except InvalidStatus as exc:
            answer = exc.response
            raise GridvmError(
                f"server answered {answer.status_code} to {path}: "
                + (answer.body or b"").decode(errors="replace")[:300]
            ) from exc
        except (OSError, InvalidURI, InvalidHandshake) as exc:
            raise GridvmError(f"cannot open {path} on the server: {exc}") from exc

    def download_blob(self, digest: str, target: Path) -> None:
        """Stream blob ``digest`` into ``target``, checking the digest on the way."""
        log.info("fetching %s from the server", digest)
        hasher = hashlib.sha256()
        try:
            with self._http.stream("GET", f"{API}/blobs/{digest}", timeout=None) as response:
                if not response.is_success:
                    response.read()
                    self._check(response)
                with target.open("wb") as f:
                    for chunk in response.iter_bytes(1024 * 1024):
                        hasher.update(chunk)
                        f.write(chunk)
        except httpx.HTTPError as exc:
            target.unlink(missing_ok=True)
            raise ToolFailed(f"download of {digest} failed: {exc}") from exc
        if f"sha256:{hasher.hexdigest()}" != digest:
            target.unlink(missing_ok=True)
            raise ToolFailed(f"download of {digest} arrived corrupted (digest mismatch)")
