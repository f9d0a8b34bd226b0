"""A guest reports to the server through the guest channel (virtio-serial, relayed by the
agent) with its VM token: ready, progress, published data. (Members of a deployment finding
each other is README journey 2, in test_journeys.py.)"""

from __future__ import annotations

import time

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
    assert "gvt." not in console


WAITING_JOB = """#!/bin/sh
echo "asking soon"
sleep 3
gridvm-guest progress 90 "sent while the agent was away"
echo "progress sent: $?"
"""


def test_a_guest_request_waits_for_an_agent_that_is_away(cloud: Cloud) -> None:
    (vm,) = cloud.run(user_data=WAITING_JOB)
    cloud.wait_console(vm["id"], "asking soon")
    cloud.agent.kill()
    time.sleep(6)  # the guest asks while no agent holds its channel
    assert cloud.vm(vm["id"])["progress"] is None
    cloud.agent.start()
    cloud.wait(vm["id"], {"done"})
    assert "progress sent: 0" in cloud.console(vm["id"])
    assert cloud.vm(vm["id"])["progress_message"] == "sent while the agent was away"
