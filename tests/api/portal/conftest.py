"""Portal tests: a real server (SQLite; the pages use the same services as the API, which
runs on both databases) and a browser-like HTTP client holding a session cookie."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import RunningServer, run_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with run_server(tmp_path / "server") as running:
        yield running


class PortalClient:
    """A logged-in browser session: cookies kept, the page's CSRF token at hand."""

    def __init__(self, server: RunningServer, token: str) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=60)
        response = self.http.post("/ui/login", data={"token": token, "next": "/ui/images"})
        assert response.status_code == 303, response.text
        self.csrf = self.page_csrf()

    def page_csrf(self) -> str:
        token = csrf_of(self.http.get("/ui/account").text)
        assert token, "the page carries no CSRF token"
        return token

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.http.get(path, **kwargs)  # type: ignore[arg-type]

    def post_form(self, path: str, data: dict[str, str]) -> httpx.Response:
        """Post a form as the page would: with the session's CSRF token."""
        return self.http.post(path, data={"csrf_token": self.csrf, **data})


def csrf_of(html: str) -> str | None:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    return found.group(1) if found else None


@pytest.fixture
def portal(server: RunningServer) -> PortalClient:
    """The site admin, logged in to the portal."""
    return PortalClient(server, server.admin_token)
