"""Run the server and the agent as long-lived processes."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from types import FrameType

import httpx
import uvicorn

from gridvm.agent.agent import Agent
from gridvm.api.app import create_app
from gridvm.common.config import AgentConfig, ServerConfig
from gridvm.services.server import ServerServices

log = logging.getLogger(__name__)


def build_server(config: ServerConfig) -> uvicorn.Server:
    services = ServerServices.from_config(config)
    services.prepare()
    app = create_app(services)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        # Attached consoles send small messages (at most 64 KiB, see schemas.consoles).
        ws_max_size=1024 * 1024,
    )
    return uvicorn.Server(uv_config)


def run_server(config: ServerConfig) -> None:
    build_server(config).run()


def run_agent(config: AgentConfig) -> None:
    agent = Agent(config)

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    agent.run()


def wait_healthy(url: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def run_up(server_config: ServerConfig, agent_config: AgentConfig) -> None:
    """Server and one local agent in this process; QEMU guests outlive it and are re-adopted."""
    server = build_server(server_config)
    agent_holder: list[Agent] = []

    def agent_thread() -> None:
        if not wait_healthy(agent_config.server_url):
            log.error("the server did not come up; the local agent is not started")
            return
        token = server_config.agent_token_file.read_text().strip()
        agent = Agent(dataclasses.replace(agent_config, token=token))
        agent_holder.append(agent)
        agent.run()

    thread = threading.Thread(target=agent_thread, name="gridvm-agent", daemon=True)
    thread.start()
    try:
        server.run()
    finally:
        for agent in agent_holder:
            agent.stop()
        thread.join(timeout=15)
