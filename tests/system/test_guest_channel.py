"""Guests report to the server and find each other through the guest channel (virtio-serial,
relayed by the agent) with their VM token: ready, progress, published data, group context."""

from __future__ import annotations

import pytest

from tests.system.cloud import Cloud

pytestmark = pytest.mark.system

REPORTING_JOB = """#!/bin/sh
gridvm-guest progress 40 "halfway there"
gridvm-guest publish answer 42
gridvm-guest self > "$GRIDVM_OUTPUT/self.json"
echo "token file mode: $(stat -c %a /run/gridvm/token)"
# The VM token opens the guest API only: another VM's data is refused.
gridvm-guest get nosuchvm answer; echo "missing peer status $?"
sleep 30
"""


def test_a_guest_reports_ready_progress_and_data_with_its_vm_token(cloud: Cloud) -> None:
    (vm,) = cloud.run(user_data=REPORTING_JOB, name="reporter")
    cloud.wait_console(vm["id"], "missing peer status 1")
    shown = cloud.vm(vm["id"])
    assert shown["ready_at"] is not None
    assert shown["ip"] == "10.0.2.15"  # QEMU user-mode networking's guest address
    assert shown["progress"] == 40
    assert shown["progress_message"] == "halfway there"
    assert shown["published"] == {"answer": "42"}
    console = cloud.console(vm["id"])
    assert "token file mode: 600" in console
    assert "no VM 'nosuchvm' in this deployment" in console
    # The token is in the seed, never in the console.
    assert "gvm." not in console


CLUSTER_JOB = """#!/bin/sh
case "$GRIDVM_ROLE" in
head)
    gridvm-guest publish nfs_export /srv/data
    echo "head sees:"; gridvm-guest peers all 120; echo "head context status $?"
    ;;
worker)
    echo "worker sees:"; gridvm-guest peers required 120; echo "worker context status $?"
    head=$(gridvm-guest peers required 0 | awk '$2 == "head" {print $1}')
    echo "worker reads export: $(gridvm-guest get "$head" nfs_export 60)"
    ;;
esac
"""


def test_head_and_workers_find_each_other(cloud: Cloud) -> None:
    vms = cloud.run(
        name="cluster",
        user_data=CLUSTER_JOB,
        roles=[
            {"name": "head", "count": 1, "provides": ["nfs", "torque"]},
            {"name": "worker", "count": 2, "requires": ["torque"]},
        ],
    )
    names = {vm["name"]: vm for vm in vms}
    assert sorted(names) == ["cluster-head-0", "cluster-worker-0", "cluster-worker-1"]
    for vm in vms:
        cloud.wait(vm["id"], {"done"}, timeout=180)
    head = cloud.console(names["cluster-head-0"]["id"])
    assert "head context status 0" in head
    assert "cluster-worker-0 worker cluster-worker-0 10.0.2.15 ready" in head
    assert "cluster-worker-1 worker cluster-worker-1 10.0.2.15 ready" in head
    for worker in ("cluster-worker-0", "cluster-worker-1"):
        console = cloud.console(names[worker]["id"])
        assert "worker context status 0" in console
        assert "cluster-head-0 head cluster-head-0 10.0.2.15 ready" in console
        assert "worker reads export: /srv/data" in console
