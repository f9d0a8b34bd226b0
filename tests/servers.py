"""A real gridvm server on a free loopback port, run in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from gridvm.api.app import create_app
from gridvm.common.config import ImagePolicySettings, ServerConfig, SiteLimits
from gridvm.services.server import ServerServices


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    services: ServerServices
    admin_token: str
    agent_token: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@contextmanager
def run_server(
    data_dir: Path,
    *,
    starter_dir: Path | None = None,
    limits: SiteLimits | None = None,
    scheduler_interval_s: float = 0.2,
    host_offline_after_s: float = 30.0,
    database_url: str | None = None,
    console_agent_timeout_s: float = 10.0,
    images: ImagePolicySettings | None = None,
    vuln_feed: str | None = None,
    vuln_feed_interval_s: float = 300.0,
    build_cache_max_mb: int = 2048,
) -> Iterator[RunningServer]:
    port = free_port()
    config = ServerConfig(
        data_dir=data_dir,
        database_url=database_url,
        port=port,
        starter_dir=starter_dir,
        limits=limits or SiteLimits(),
        scheduler_interval_s=scheduler_interval_s,
        host_offline_after_s=host_offline_after_s,
        console_agent_timeout_s=console_agent_timeout_s,
        images=images or ImagePolicySettings(),
        vuln_feed=vuln_feed,
        vuln_feed_interval_s=vuln_feed_interval_s,
        build_cache_max_mb=build_cache_max_mb,
    )
    services = ServerServices.from_config(config)
    services.prepare()
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield RunningServer(
            url=url,
            data_dir=data_dir,
            services=services,
            admin_token=config.admin_token_file.read_text().strip(),
            agent_token=config.agent_token_file.read_text().strip(),
        )
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        services.db.dispose()
