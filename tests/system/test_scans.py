"""Parameter scans on real guests: one VM per row, row values in the job's environment,
results collected from each VM's results disk, a failing row visible as failed."""

from __future__ import annotations

import base64
import io
import tarfile

import pytest

from tests.system.cloud import Cloud

pytestmark = pytest.mark.system

JOB = """#!/bin/sh
echo "row $GRIDVM_INDEX: energy=$ENERGY material=$MATERIAL"
echo "$ENERGY $MATERIAL" > "$GRIDVM_OUTPUT/summary.txt"
mkdir -p "$GRIDVM_OUTPUT/plots"
echo "plot of row $GRIDVM_INDEX" > "$GRIDVM_OUTPUT/plots/p.txt"
[ "$MATERIAL" = "unobtainium" ] && exit 3
exit 0
"""

ROWS = [
    {"ENERGY": "10", "MATERIAL": "lead"},
    {"ENERGY": "20", "MATERIAL": "iron's alloy; $(rm -rf /)"},
    {"ENERGY": "30", "MATERIAL": "unobtainium"},
    {"ENERGY": "40", "MATERIAL": "water"},
]


def results_of(cloud: Cloud, vm_id: str) -> dict[str, str]:
    response = cloud.admin.get(f"/api/v1/vms/{vm_id}/results")
    assert response.status_code == 200, response.text
    with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
        return {
            m.name: archive.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in archive
            if m.isfile()
        }


def test_a_scan_runs_one_vm_per_row_and_keeps_each_rows_results(cloud: Cloud) -> None:
    made = cloud.admin.post(
        "/api/v1/vms",
        json={
            "image": "tiny",
            "memory_mb": 192,
            "user_data": JOB,
            "params": ROWS,
            "max_running": 2,
            "name": "scan",
        },
    )
    assert made.status_code == 201, made.text
    deployment = made.json()
    assert (deployment["count"], deployment["max_running"]) == (4, 2)
    vms = deployment["vms"]
    ended = [
        cloud.wait(vm["id"], {"done", "failed", "cancelled", "expired"}, timeout=180) for vm in vms
    ]
    assert [vm["state"] for vm in ended] == ["done", "done", "failed", "done"]
    assert [vm["exit_status"] for vm in ended] == [0, 0, 3, 0]
    assert ended[2]["exit_reason"] == "the job exited with status 3"
    for index, (vm, row) in enumerate(zip(ended, ROWS, strict=True)):
        assert f"row {index}: energy={row['ENERGY']} material={row['MATERIAL']}" in cloud.console(
            vm["id"]
        )
        files = results_of(cloud, vm["id"])
        assert files == {
            "summary.txt": f"{row['ENERGY']} {row['MATERIAL']}\n",
            "plots/p.txt": f"plot of row {index}\n",
        }
        assert vm["results_bytes"] > 0


def test_a_job_without_output_has_no_results(cloud: Cloud) -> None:
    vm = cloud.run(user_data="#!/bin/sh\necho nothing to keep\n")[0]
    ended = cloud.wait(vm["id"], {"done", "failed"})
    assert (ended["state"], ended["exit_status"], ended["results_bytes"]) == ("done", 0, None)
    missing = cloud.admin.get(f"/api/v1/vms/{vm['id']}/results")
    assert missing.status_code == 404
    assert "no results" in missing.json()["message"]


def test_secrets_and_files_reach_the_job_and_only_its_iso(cloud: Cloud) -> None:
    assert (
        cloud.admin.post(
            "/api/v1/secrets", params={"name": "licence"}, content=b"LICENCE-KEY-42"
        ).status_code
        == 201
    )
    job = (
        "#!/bin/sh\n"
        "s=$GRIDVM_SECRETS/licence\n"
        'echo "licence: $(cat $s) mode $(stat -c %a $s)"\n'
        'echo "input: $(cat /root/data/input.csv)"\n'
        "sleep 600\n"
    )
    files = [
        {"path": "/root/data/input.csv", "content_b64": base64.b64encode(b"a,b\n1,2").decode()}
    ]
    vm = cloud.run(user_data=job, secrets=["licence"], files=files)[0]
    console = cloud.wait_console(vm["id"], "input:")
    assert "licence: LICENCE-KEY-42 mode 600" in console
    assert "input: a,b\n1,2" in console.replace("\r\n", "\n")
    seed = cloud.vm_dir(vm["id"]) / "seed.iso"
    assert seed.stat().st_mode & 0o777 == 0o600
    cloud.admin.post(f"/api/v1/vms/{vm['id']}/terminate")
    cloud.wait(vm["id"], {"cancelled"})
    assert not seed.exists()


def test_chosen_ssh_keys_are_installed_in_the_guest(cloud: Cloud) -> None:
    from tests.api.test_ssh_keys import KEY

    assert (
        cloud.admin.post("/api/v1/ssh-keys", json={"name": "laptop", "public_key": KEY}).status_code
        == 201
    )
    vm = cloud.run(
        user_data="#!/bin/sh\necho keys: && cat /root/.ssh/authorized_keys\n", ssh_keys=["laptop"]
    )[0]
    cloud.wait(vm["id"], {"done", "failed"})
    assert f"keys:\r\n{KEY}" in cloud.console(vm["id"]) or f"keys:\n{KEY}" in cloud.console(
        vm["id"]
    )
