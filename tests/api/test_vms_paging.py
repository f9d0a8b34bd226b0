"""GET /api/v1/vms in pages: ``limit``/``offset``, several ``state``s, and the number of
matching VMs in the ``X-Total-Count`` header (on both databases)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import make_qcow2, make_user, upload
from tests.servers import RunningServer


@pytest.fixture
def admin(server: RunningServer, tmp_path: Path) -> httpx.Client:
    admin = server.client()
    made = upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base", visibility="public")
    assert made.status_code == 201, made.text
    return admin


def run(client: httpx.Client, count: int, name: str = "scan") -> list[dict[str, Any]]:
    made = client.post(
        "/api/v1/vms", json={"image": "base", "memory_mb": 128, "count": count, "name": name}
    )
    assert made.status_code == 201, made.text
    vms: list[dict[str, Any]] = made.json()["vms"]
    return vms


def listed(client: httpx.Client, **params: Any) -> tuple[list[str], int]:
    """The names of the VMs listed, and the X-Total-Count header."""
    response = client.get("/api/v1/vms", params=params)
    assert response.status_code == 200, response.text
    return [vm["name"] for vm in response.json()], int(response.headers["x-total-count"])


def test_vms_come_in_pages_oldest_first_with_the_total(admin: httpx.Client) -> None:
    run(admin, 7)
    names = [f"scan-{i}" for i in range(7)]
    assert listed(admin) == (names, 7)  # no limit: every VM, as before
    assert listed(admin, limit=3) == (names[:3], 7)
    assert listed(admin, limit=3, offset=3) == (names[3:6], 7)
    assert listed(admin, limit=3, offset=6) == (names[6:], 7)
    assert listed(admin, limit=3, offset=9) == ([], 7)  # past the end: an empty page
    assert listed(admin, offset=5) == (names[5:], 7)


def test_several_states_filter_together_and_the_total_counts_only_those(
    admin: httpx.Client,
) -> None:
    vms = run(admin, 5)
    for vm in vms[:2]:  # a pending VM stopped is cancelled
        assert admin.post(f"/api/v1/vms/{vm['id']}/stop").status_code == 202
    assert listed(admin, state="cancelled") == (["scan-0", "scan-1"], 2)
    assert listed(admin, state="pending", limit=2) == (["scan-2", "scan-3"], 3)
    both = admin.get("/api/v1/vms?state=pending&state=cancelled&limit=4&offset=1")
    assert [vm["name"] for vm in both.json()] == ["scan-1", "scan-2", "scan-3", "scan-4"]
    assert both.headers["x-total-count"] == "5"
    assert listed(admin, state="running") == ([], 0)


def test_the_total_counts_only_the_vms_the_caller_may_list(
    server: RunningServer, admin: httpx.Client
) -> None:
    alice = make_user(server, "alice")
    run(alice, 3, name="hers")
    run(admin, 2, name="mine")
    assert listed(alice, limit=1) == (["hers-0"], 3)
    assert listed(admin, limit=1) == (["mine-0"], 2)
    assert listed(admin, limit=1, all="true")[1] == 5
    assert listed(alice, all="true", limit=10)[1] == 3  # only admins see everyone's


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "a page of 0 VMs is not possible"),
        ("limit=1001", "a page of 1001 VMs is not possible"),
        ("offset=-1", "an offset of -1 is before the first VM"),
        ("limit=many", "limit"),
        ("state=pending&state=sleeping", "state"),
    ],
)
def test_a_bad_page_or_state_is_refused_with_why(
    admin: httpx.Client, query: str, message: str
) -> None:
    run(admin, 1)
    refused = admin.get(f"/api/v1/vms?{query}")
    assert refused.status_code == 422, refused.text
    assert message in refused.json()["message"]
