"""Parameter scans, job results and whole deployments from the CLI.

The test server has no agent, so VMs stay pending; where a test needs VMs
that ran (exit status, results), it speaks the agent protocol to the real
server by hand, as the API tests do.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.api.helpers import assigned, register_host, report, sync
from tests.cli.conftest import Cli
from tests.servers import RunningServer


@pytest.fixture
def image(cli: Cli, qcow2: Path) -> str:
    return str(cli.json("image", "upload", str(qcow2), "--name", "base")["id"])


def write(tmp_path: Path, text: str | bytes, name: str = "params.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def deployment_of(stdout: str) -> str:
    first = stdout.splitlines()[0]
    assert first.startswith("deployment dep-"), stdout
    return first.split()[1]


# --- the CSV file ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("", [], "params.csv is empty: no rows, so no VMs to start"),
        ("\n\n", [], "params.csv is empty: no rows"),
        ("alpha,seed\n", [], "params.csv has a header but no rows: no rows"),
        ("alpha,,seed\n1,2,3\n", [], "params.csv line 1: column 2 of the header has no name"),
        ("alpha,seed,alpha\n1,2,3\n", [], "the column name 'alpha' appears twice in the header"),
        ("alpha,1seed\n1,2\n", [], "the column name '1seed' is not a shell variable name"),
        ("alpha,my-seed\n1,2\n", [], "the column name 'my-seed' is not a shell variable name"),
        ("alpha, seed\n1,2\n", [], "the column name ' seed' is not a shell variable name"),
        ("alpha,GRIDVM_INDEX\n1,2\n", [], "the column name 'GRIDVM_INDEX' is reserved"),
        ("GRIDVM_X\n1\n", [], "the column name 'GRIDVM_X' is reserved"),
        ("alpha,seed\n1,2\n3,4,5\n", [], "params.csv line 3: 3 fields where the header has 2"),
        ("alpha,seed\n1,2\n\n3\n", [], "params.csv line 4: 1 field where the header has 2"),
        (b"alpha,seed\n1,2\n\xff\xfe,3\n", [], "params.csv is not UTF-8 text (byte 15, line 3)"),
        (
            b"alpha\n\x00\x01\x02binary\n",
            [],
            "params.csv is not a text file (a NUL byte on line 2)",
        ),
        ('alpha\n"open quote\n', [], "params.csv line 2: unexpected end of data"),
        ("alpha\n1\n2\n3\n", ["-n", "5"], "-n 5 does not match the 3 rows of"),
        ("alpha\n1\n2\n3\n", ["-n", "1"], "-n 1 does not match the 3 rows of"),
        ("alpha\n1\n", ["--max-running", "0"], "--max-running 0: at least 1 VM"),
    ],
)
def test_a_bad_param_file_is_refused_before_any_request(
    cli: Cli, image: str, tmp_path: Path, content: str | bytes, extra: list[str], message: str
) -> None:
    path = write(tmp_path, content)
    line = cli.fails("vm", "run", "base", "--param-file", str(path), *extra)
    assert message in line
    assert "\n" not in line
    assert cli.json("deployment", "list") == []
    assert cli.json("vm", "list") == []


def test_a_missing_param_file_is_one_line(cli: Cli, image: str, tmp_path: Path) -> None:
    line = cli.fails("vm", "run", "base", "--param-file", str(tmp_path / "nothing.csv"))
    assert "nothing.csv: No such file or directory" in line
    assert cli.json("deployment", "list") == []


def test_max_running_below_one_is_refused_without_a_scan(cli: Cli, image: str) -> None:
    line = cli.fails("vm", "run", "base", "-n", "3", "--max-running", "-1")
    assert "--max-running -1: at least 1 VM must be allowed to run" in line
    assert cli.json("deployment", "list") == []


def test_three_rows_make_a_deployment_of_three_vms(cli: Cli, image: str, tmp_path: Path) -> None:
    # A byte-order mark, a quoted comma, a blank line and CRLF line ends are all fine.
    path = write(
        tmp_path,
        '\ufeffalpha,seed,label\r\n0.1,1,"a, b"\r\n\r\n0.2,2,c\r\n0.3,3,\r\n',
    )
    result = cli.ok(
        "vm", "run", "base", "--param-file", str(path), "--name", "scan", "--max-running", "2"
    )
    first = result.stdout.splitlines()[0]
    assert "(scan): 3 VMs of image base" in first
    assert first.endswith("at most 2 running at once")
    deployment_id = deployment_of(result.stdout)
    vms = cli.json("vm", "list", "--deployment", deployment_id)
    assert [vm["name"] for vm in vms] == ["scan-0", "scan-1", "scan-2"]
    assert cli.json("deployment", "show", deployment_id)["count"] == 3
    assert cli.json("deployment", "show", deployment_id)["max_running"] == 2
    assert "max running  2" in cli.ok("deployment", "show", deployment_id).stdout
    # -n may be given when it says the same as the file.
    again = cli.json("vm", "run", "base", "--param-file", str(path), "-n", "3")
    assert again["count"] == 3 and len(again["vms"]) == 3


def test_rows_above_the_site_limit_show_the_servers_message(
    cli: Cli, image: str, tmp_path: Path
) -> None:
    rows = "".join(f"{i}\n" for i in range(1025))
    path = write(tmp_path, "alpha\n" + rows)
    assert "cannot start 1025 VMs in one request" in cli.fails(
        "vm", "run", "base", "--param-file", str(path)
    )
    assert cli.json("deployment", "list") == []


# --- results ---------------------------------------------------------------------------
def test_results_of_a_vm_without_any_fail_with_the_servers_message(
    cli: Cli, image: str, tmp_path: Path
) -> None:
    vm = cli.json("vm", "run", "base")["vms"][0]
    out = tmp_path / "results"
    line = cli.fails("vm", "results", vm["id"], "-d", str(out))
    assert f"error: VM {vm['id']} has no results" in line
    assert not (out / "base").exists()
    assert [p.name for p in out.iterdir()] == []  # no temporary file left behind
    assert "no VM 'vm-nothing'" in cli.fails("vm", "results", "vm-nothing", "-d", str(out))
    assert "no deployment 'dep-nothing'" in cli.fails(
        "vm", "results", "dep-nothing", "-d", str(out)
    )


def test_results_of_a_deployment_without_any_skip_every_vm(
    cli: Cli, image: str, tmp_path: Path
) -> None:
    deployment = cli.json("vm", "run", "base", "-n", "2", "--name", "scan")
    result = cli("vm", "results", deployment["id"], "-d", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "no results for scan-0 (pending)" in result.stderr
    assert "no results for scan-1 (pending)" in result.stderr
    assert f"error: no VM of deployment {deployment['id']} has results" in result.stderr


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_scan_that_ran_shows_exit_statuses_and_downloads_results(
    cli: Cli, server: RunningServer, image: str, tmp_path: Path
) -> None:
    """Needs the server side of issue 3: params, exit_status, results upload and download."""
    path = write(tmp_path, "alpha\n1\n2\n3\n")
    deployment_id = deployment_of(
        cli.ok("vm", "run", "base", "--param-file", str(path), "--name", "scan").stdout
    )
    vms = cli.json("vm", "list", "--deployment", deployment_id)
    agent = register_host(server)
    for vm in vms:
        assigned(agent, vm["id"])
    good = tar_of({"out.txt": b"alpha=1\n", "plots/a.csv": b"x,y\n"})
    stored = agent.put(f"/api/v1/agent/vms/{vms[0]['id']}/results", content=good)
    assert stored.status_code == 200, stored.text
    evil = tar_of({"../evil.txt": b"pwned"})
    assert agent.put(f"/api/v1/agent/vms/{vms[1]['id']}/results", content=evil).status_code == 200
    sync(agent, [report(vm, "running") for vm in vms])
    sync(
        agent,
        [
            {**report(vms[0], "ended", "poweroff"), "exit_status": 0},
            {**report(vms[1], "ended", "poweroff"), "exit_status": 0},
            {**report(vms[2], "ended", "poweroff"), "exit_status": 3},
        ],
    )

    shown = cli.ok("vm", "show", vms[2]["id"]).stdout
    assert "exit status" in shown and "the job exited with status 3" in shown
    assert "results" in shown and "none" in shown
    assert f"gridvm vm results {vms[0]['id']}" in cli.ok("vm", "show", vms[0]["id"]).stdout
    table = cli.ok("vm", "list", "--deployment", deployment_id).stdout
    assert "EXIT" in table.splitlines()[0] and "RESULTS" in table.splitlines()[0]

    wait = cli("deployment", "wait", deployment_id, "--timeout", "10s", "--poll", "0.1")
    assert wait.exit_code == 1
    assert "1 of 3 VMs of" in wait.stderr and "did not end well: 1 failed" in wait.stderr
    assert "scan-2" in wait.stdout and "scan-0" not in wait.stdout

    out = tmp_path / "results"
    result = cli("vm", "results", deployment_id, "-d", str(out))
    assert result.exit_code == 1  # one archive was unsafe
    assert "scan-0: 2 files, 12 B in" in result.stdout
    assert "'../evil.txt' is a path outside the results folder" in result.stderr
    assert "no results for scan-2 (failed)" in result.stderr
    assert (out / "scan-0" / "out.txt").read_bytes() == b"alpha=1\n"
    assert (out / "scan-0" / "plots" / "a.csv").read_bytes() == b"x,y\n"
    assert sorted(p.name for p in out.iterdir()) == ["scan-0"]
    assert not (tmp_path / "evil.txt").exists()

    # The folder holds files now: a second download refuses to overwrite it...
    line = cli.fails("vm", "results", vms[0]["id"], "-d", str(out))
    assert "scan-0 exists and is not empty (pass --force" in line
    (out / "scan-0" / "mine.txt").write_text("stale")
    # ... unless --force, which replaces the folder with the downloaded files.
    downloaded = cli.json("vm", "results", vms[0]["id"], "-d", str(out), "--force")
    assert downloaded["downloaded"] == [
        {
            "vm": vms[0]["id"],
            "name": "scan-0",
            "path": str(out / "scan-0"),
            "files": 2,
            "bytes": 12,
        }
    ]
    assert sorted(p.name for p in (out / "scan-0").iterdir()) == ["out.txt", "plots"]
    assert sorted(p.name for p in out.iterdir()) == ["scan-0"]


# --- whole deployments ---------------------------------------------------------------------
def test_cancel_ends_every_pending_vm_of_a_deployment(cli: Cli, image: str) -> None:
    deployment = cli.json("vm", "run", "base", "-n", "3", "--name", "scan")
    other = cli.json("vm", "run", "base", "--name", "other")
    first = deployment["vms"][0]["id"]
    cli.ok("vm", "stop", first)

    result = cli.ok("deployment", "cancel", deployment["id"])
    assert (
        f"deployment {deployment['id']}: terminate requested for 2 VMs (now 2 cancelled);"
        " 1 VM had ended already"
    ) in result.stdout
    shown = cli.json("deployment", "show", deployment["id"])
    assert shown["states"] == {"cancelled": 3}
    assert [vm["state"] for vm in cli.json("vm", "list", "--deployment", other["id"])] == [
        "pending"
    ]
    # Cancelling again has nothing left to do.
    again = cli.ok("deployment", "cancel", deployment["id"]).stdout
    assert "terminate requested for 0 VMs; 3 VMs had ended already" in again
    assert cli.json("deployment", "cancel", deployment["id"])["states"] == {"cancelled": 3}

    wait = cli("deployment", "wait", deployment["id"], "--timeout", "10s", "--poll", "0.1")
    assert wait.exit_code == 1
    assert "3 of 3 VMs of" in wait.stderr and "did not end well: 3 cancelled" in wait.stderr
    assert "no deployment 'dep-nothing'" in cli.fails("deployment", "cancel", "dep-nothing")


def test_deployment_wait_gives_up_at_the_timeout(cli: Cli, image: str) -> None:
    deployment = cli.json("vm", "run", "base", "-n", "2")
    line = cli.fails("deployment", "wait", deployment["id"], "--timeout", "1s", "--poll", "0.2")
    assert "2 of 2 VMs did not end within 1s" in line and "2 pending" in line
