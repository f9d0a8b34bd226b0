"""Logging in to the portal with an API token: the session cookie and what it allows."""

from __future__ import annotations

import httpx

from tests.api.helpers import make_user
from tests.api.portal.conftest import PortalClient, csrf_of
from tests.servers import RunningServer


def test_a_page_without_a_session_sends_the_browser_to_log_in(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/ui/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=%2Fui%2Faccount"


def test_logging_in_with_a_token_opens_a_session_with_a_safe_cookie(
    server: RunningServer,
) -> None:
    browser = httpx.Client(base_url=server.url)
    response = browser.post("/ui/login", data={"token": server.admin_token, "next": "/ui/account"})
    assert response.status_code == 303 and response.headers["location"] == "/ui/account"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert server.admin_token not in response.headers["set-cookie"]
    page = browser.get("/ui/account")
    assert page.status_code == 200 and 'id="account-name">admin<' in page.text


def test_a_wrong_token_is_refused_with_the_reason_and_no_cookie(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/ui/login", data={"token": "gvm_not-a-token"})
    assert response.status_code == 401
    assert "The API token is not valid. Ask for a new token." in response.text
    assert "set-cookie" not in response.headers


def test_an_empty_token_is_asked_for(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/ui/login", data={"token": "  "})
    assert response.status_code == 422 and "Enter your API token" in response.text


def test_login_never_returns_to_another_site(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.url}/ui/login", data={"token": server.admin_token, "next": "//evil.example/"}
    )
    assert response.headers["location"] == "/ui/images"


def test_an_agent_token_cannot_log_in(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/ui/login", data={"token": server.agent_token})
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_the_session_reaches_the_api_and_changes_need_the_csrf_header(
    portal: PortalClient,
) -> None:
    assert portal.get("/api/v1/whoami").json()["name"] == "admin"
    refused = portal.http.post("/api/v1/groups", json={"name": "physics"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    assert "physics" not in [g["name"] for g in portal.get("/api/v1/groups").json()]
    made = portal.http.post(
        "/api/v1/groups", json={"name": "physics"}, headers={"X-CSRF-Token": portal.csrf}
    )
    assert made.status_code == 201


def test_a_form_without_the_csrf_token_changes_nothing(portal: PortalClient) -> None:
    response = portal.http.post("/ui/logout", data={})
    assert response.status_code == 403 and "CSRF" in response.text
    assert portal.get("/ui/account").status_code == 200  # still logged in


def test_a_form_posted_from_another_site_is_refused(portal: PortalClient) -> None:
    response = portal.http.post(
        "/ui/logout", data={"csrf_token": portal.csrf}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert portal.get("/ui/account").status_code == 200


def test_logging_out_ends_the_session(portal: PortalClient) -> None:
    response = portal.post_form("/ui/logout", {})
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert "You are logged out" in portal.get("/ui/login").text
    assert portal.get("/ui/account").status_code == 303
    assert portal.get("/api/v1/whoami").status_code == 401


def test_revoking_the_token_ends_its_portal_sessions(server: RunningServer) -> None:
    alice = make_user(server, "alice")
    token = alice.headers["authorization"].removeprefix("Bearer ")
    browser = PortalClient(server, token)
    token_id = alice.get("/api/v1/tokens").json()[0]["id"]
    assert alice.delete(f"/api/v1/tokens/{token_id}").status_code == 204
    assert browser.get("/ui/account").status_code == 303


def test_the_login_page_has_a_labelled_input_and_no_outside_assets(server: RunningServer) -> None:
    page = httpx.get(f"{server.url}/ui/login").text
    assert '<label for="token">' in page and 'id="token"' in page
    assert "http://" not in page and "https://" not in page
    assert csrf_of(page) is None  # no session, no CSRF token on the page
