from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import gridvm.main  # noqa: F401 - adds the daemon commands to the app, as installed
from gridvm.cli.app import app
from tests.client.disks import make_qcow2
from tests.servers import RunningServer

ADMIN = object()  # the default: run as the site's admin


@dataclass
class Cli:
    """``gridvm`` run in-process against the test server, configured by environment."""

    server: RunningServer
    config: Path

    def __call__(
        self,
        *args: str,
        token: object = ADMIN,
        url: str | None = "",
        input: str | None = None,
    ) -> Result:
        env: dict[str, str | None] = {
            "GRIDVM_URL": self.server.url if url == "" else url,
            "GRIDVM_TOKEN": self.server.admin_token if token is ADMIN else token,  # type: ignore[dict-item]
            "GRIDVM_CONFIG": str(self.config),
            "COLUMNS": "250",
        }
        result = CliRunner().invoke(app, list(args), env=env, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"gridvm {' '.join(args)} crashed") from result.exception
        return result

    def ok(self, *args: str, **kwargs: Any) -> Result:
        result = self(*args, **kwargs)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok("-o", "json", *args, **kwargs).stdout)

    def fails(self, *args: str, **kwargs: Any) -> str:
        """Run a command that must fail cleanly; return its one error line."""
        result = self(*args, **kwargs)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("error: "), result.stderr
        assert "Traceback" not in result.output
        return lines[-1]


@pytest.fixture
def cli(server: RunningServer, tmp_path: Path) -> Cli:
    return Cli(server, tmp_path / "home" / "gridvm" / "config.json")


@pytest.fixture
def scanned_cli(scanned_server: RunningServer, tmp_path: Path) -> Cli:
    """``gridvm`` against a server that scans uploads against the project's OSV feed."""
    return Cli(scanned_server, tmp_path / "home" / "gridvm" / "config.json")


@pytest.fixture
def qcow2(tmp_path: Path) -> Path:
    return make_qcow2(tmp_path / "disk.qcow2", "64M")


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The daemon commands set up logging on the runner's stderr, which closes after the
    run: put the test process's handlers back, or later log lines hit a closed file."""
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
