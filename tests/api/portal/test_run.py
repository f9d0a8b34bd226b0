"""The Run page: the form, a run that makes a deployment, and requests refused with their reason."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import make_qcow2, make_user, upload
from tests.api.portal.conftest import PortalClient
from tests.servers import RunningServer

FORM = {
    "image": "base",
    "mode": "multi",
    "count": "1",
    "cores": "1",
    "memory": "128",
    "walltime": "",
    "vm_name": "",
    "user_data": "",
}


@pytest.fixture
def api(server: RunningServer, tmp_path: Path) -> httpx.Client:
    """The admin's API client, with a public image "base" (two versions) to run."""
    admin = server.client()
    for _ in range(2):
        made = upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base", visibility="public")
        assert made.status_code == 201, made.text
    return admin


def page_text(response: httpx.Response) -> str:
    return html.unescape(response.text)


def form_error(response: httpx.Response) -> str:
    found = re.search(r'<div class="error" role="alert" id="form-error">(.*?)</div>', response.text)
    assert found, "the page shows no form error"
    return html.unescape(found.group(1))


def quota_section(response: httpx.Response) -> str:
    found = re.search(r'<section class="card" id="quota".*?</section>', response.text, re.S)
    assert found
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", found.group(0))))


def test_the_form_offers_the_images_by_name_and_version(
    portal: PortalClient, api: httpx.Client
) -> None:
    page = portal.get("/ui/run")
    assert page.status_code == 200
    for option in ('<option value="base"', '<option value="base:1"', '<option value="base:2"'):
        assert option in page.text
    for label in ('for="image">Image<', 'for="count">Number of machines<', 'for="cores">Cores<'):
        assert label in page.text
    assert 'for="memory">Memory (MiB)<' in page.text and 'id="param-file"' in page.text
    assert "its disk is thrown away when it ends" in page.text  # what multi mode means


def test_the_quota_left_is_shown_and_none_is_said_so(
    server: RunningServer, portal: PortalClient, api: httpx.Client
) -> None:
    assert "No quota is set for you or your groups" in quota_section(portal.get("/ui/run"))
    alice = make_user(server, "alice", group="physics")
    api.put("/api/v1/quotas/group/physics", json={"cores": 4, "vms": 10})
    api.put("/api/v1/quotas/user/alice", json={"memory_mb": 2048})
    api.put("/api/v1/quotas/user/admin", json={"vms": 1})  # not alice's: not shown to her
    assert alice.post("/api/v1/vms", json={"image": "base"}).status_code == 201
    as_alice = PortalClient(server, alice.headers["authorization"].removeprefix("Bearer "))
    shown = quota_section(as_alice.get("/ui/run"))
    assert "group physics 4 of 4 left no limit 10 of 10 left" in shown  # nothing runs yet
    assert "user alice no limit 2048 MiB of 2048 MiB left no limit" in shown
    assert "user admin" not in shown


def test_a_valid_run_makes_the_deployment_and_shows_it_in_the_queue(
    portal: PortalClient, api: httpx.Client
) -> None:
    sent = portal.post_form(
        "/ui/run",
        {
            **FORM,
            "image": "base:1",
            "count": "2",
            "cores": "2",
            "memory": "1G",
            "walltime": "1h30m",
            "vm_name": "scan",
            "user_data": "#!/bin/sh\r\necho hello\r\n",
        },
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/ui/queue"
    vms = api.get("/api/v1/vms").json()
    assert [(v["name"], v["vcpus"], v["memory_mb"], v["walltime_s"]) for v in vms] == [
        ("scan-0", 2, 1024, 5400),
        ("scan-1", 2, 1024, 5400),
    ]
    assert {v["image_version"] for v in vms} == {1} and {v["mode"] for v in vms} == {"multi"}
    queue = portal.get("/ui/queue")
    deployment = vms[0]["deployment"]
    assert f"Deployment scan ({deployment}) asked for 2 VMs." in page_text(queue)
    for vm in vms:
        assert f'<tr data-vm-id="{vm["id"]}"' in queue.text
    assert "asked for" not in portal.get("/ui/queue").text  # the notice shows once


def test_single_mode_runs_one_persistent_vm(portal: PortalClient, api: httpx.Client) -> None:
    sent = portal.post_form("/ui/run", {**FORM, "mode": "single", "vm_name": "dev"})
    assert sent.status_code == 303
    (vm,) = api.get("/api/v1/vms").json()
    assert (vm["name"], vm["mode"], vm["image_version"]) == ("dev", "single", 2)


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"count": "0"}, 422, "Cannot start 0 VMs in one request. Ask for 1 to 1024."),
        ({"count": "many"}, 422, "The number of machines must be a whole number, not 'many'."),
        ({"memory": "32"}, 422, "Image 'base' needs at least 64 MiB of memory."),
        ({"memory": "lots"}, 422, "'lots' is not a size."),
        ({"image": "nope"}, 404, "No image 'nope'."),
        ({"image": ""}, 422, "Choose an image to run."),
        ({"walltime": "soon"}, 422, "'soon' is not a duration. Write it like 90s, 10m"),
        ({"walltime": "30d"}, 422, "A walltime of 720h is outside the site's limit."),
        ({"mode": "forever"}, 422, "'forever' is not a mode."),
        ({"cores": "4"}, 422, "One VM asks for 4 vCPUs, more than user admin's quota of 2 cores."),
    ],
)
def test_a_bad_request_shows_why_keeps_the_values_and_makes_nothing(
    portal: PortalClient, api: httpx.Client, change: dict[str, str], status: int, message: str
) -> None:
    api.put("/api/v1/quotas/user/admin", json={"cores": 2})
    values = {**FORM, "vm_name": "keep-me", "user_data": "#!/bin/sh\necho <kept>\n", **change}
    refused = portal.post_form("/ui/run", values)
    assert refused.status_code == status
    assert message in form_error(refused)
    assert 'value="keep-me"' in refused.text
    assert "echo &lt;kept&gt;" in refused.text  # the script, escaped, back in the editor
    assert api.get("/api/v1/deployments").json() == []


def post_with_file(portal: PortalClient, csv: bytes, **fields: str) -> httpx.Response:
    data: dict[str, Any] = {"csrf_token": portal.csrf, **FORM, **fields}
    return portal.http.post(
        "/ui/run", data=data, files={"param_file": ("params.csv", csv, "text/csv")}
    )


def test_a_parameter_file_makes_one_vm_per_row(portal: PortalClient, api: httpx.Client) -> None:
    sent = post_with_file(portal, b"alpha,seed\n0.1,1\n0.2,2\n0.3,3\n", vm_name="scan")
    assert sent.status_code == 303, form_error(sent)
    (deployment,) = api.get("/api/v1/deployments").json()
    assert deployment["count"] == 3
    assert [v["name"] for v in deployment["vms"]] == ["scan-0", "scan-1", "scan-2"]


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        (
            b"alpha,GRIDVM_X\n1,2\n",
            "Parameter file params.csv line 1: the column name 'GRIDVM_X' is reserved.",
        ),
        (
            b"alpha,seed\n1,2\n3\n",
            "Parameter file params.csv line 3: 1 field where the header has 2 fields.",
        ),
        (
            b"alpha\n",
            "Parameter file params.csv has a header but no rows: no rows, so no VMs to start.",
        ),
    ],
)
def test_a_bad_parameter_file_is_refused_with_the_line_at_fault(
    portal: PortalClient, api: httpx.Client, csv: bytes, message: str
) -> None:
    refused = post_with_file(portal, csv)
    assert refused.status_code == 422
    assert message in form_error(refused)
    assert api.get("/api/v1/vms").json() == []


def test_a_count_that_does_not_match_the_rows_is_refused(
    portal: PortalClient, api: httpx.Client
) -> None:
    refused = post_with_file(portal, b"alpha\n1\n2\n", count="5")
    assert refused.status_code == 422
    assert "5 VMs asked for, but the parameters have 2 rows" in form_error(refused)


def test_a_run_without_the_csrf_token_is_refused(portal: PortalClient, api: httpx.Client) -> None:
    refused = portal.http.post("/ui/run", data=FORM)
    assert refused.status_code == 403
    assert "the form has no valid CSRF token" in page_text(refused)
    assert api.get("/api/v1/vms").json() == []


def test_images_are_grouped_by_whose_they_are(
    server: RunningServer, portal: PortalClient, api: httpx.Client, tmp_path: Path
) -> None:
    alice = make_user(server, "alice", group="physics")
    disk = make_qcow2(tmp_path / "b.qcow2")
    assert upload(alice, disk, "mine").status_code == 201
    as_alice = PortalClient(server, alice.headers["authorization"].removeprefix("Bearer "))
    groups = re.findall(
        r'<optgroup label="([^"]+)">(.*?)</optgroup>', as_alice.get("/ui/run").text, re.S
    )
    values = {html.unescape(label): re.findall(r'value="([^"]+)"', body) for label, body in groups}
    assert values == {
        "Your images": ["mine"],
        "Shared with you": ["base", "base:1", "base:2"],
    }
    # The admin (an officer too) sees alice's private image, set apart.
    values = {
        html.unescape(label): re.findall(r'value="([^"]+)"', body)
        for label, body in re.findall(
            r'<optgroup label="([^"]+)">(.*?)</optgroup>', portal.get("/ui/run").text, re.S
        )
    }
    assert values["Your images"] == ["base", "base:1", "base:2"]
    assert values["Other users' private images"] == ["mine"]
