"""GET /api/v1/usage: core-hours per group over time; admins see every group, users their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.helpers import (
    assigned,
    make_qcow2,
    make_user,
    register_host,
    report,
    sync,
    upload,
)
from tests.servers import RunningServer


def test_usage_per_group_for_admins_and_own_groups_for_users(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base").raise_for_status()
    admin.patch("/api/v1/images/base", json={"visibility": "public"})
    alice = make_user(server, "alice", group="physics")
    bob = make_user(server, "bob", group="bio")
    agent = register_host(server)
    vms = []
    for user in (alice, bob):
        made = user.post("/api/v1/vms", json={"image": "base", "vcpus": 2})
        assert made.status_code == 201, made.text
        vms.append(made.json()["vms"][0])
    for vm in vms:
        assigned(agent, vm["id"])
    sync(agent, [report(vm, "running") for vm in vms])

    everything = admin.get("/api/v1/usage", params={"days": 30})
    assert everything.status_code == 200, everything.text
    body = everything.json()
    assert (body["days"], body["bucket"], len(body["starts"])) == (30, "day", 30)
    assert {s["group"] for s in body["series"]} == {"physics", "bio"}
    for series in body["series"]:
        assert len(series["core_hours"]) == 30 and series["core_hours"][-1] > 0

    own = alice.get("/api/v1/usage", params={"days": 1}).json()
    assert (own["bucket"], len(own["starts"])) == ("hour", 24)
    assert [s["group"] for s in own["series"]] == ["physics"]
    assert alice.get("/api/v1/usage").json()["days"] == 7  # the default


@pytest.mark.parametrize("days", ["0", "367"])
def test_a_bad_range_is_refused_with_a_clear_message(server: RunningServer, days: str) -> None:
    refused = server.client().get("/api/v1/usage", params={"days": days})
    assert refused.status_code == 422
    assert "days must be between 1 and 366" in refused.json()["message"]


def test_agents_may_not_read_usage(server: RunningServer) -> None:
    agent = register_host(server)
    assert agent.get("/api/v1/usage").status_code == 403
