"""A demo multi-host test bed left running: ``make testbed-up`` / ``make testbed-down``.

    python scripts/testbed.py up [--dir DIR]     start it in the background, print how to use it
    python scripts/testbed.py down [--dir DIR]   stop it; remove every namespace, process, file

The bed is the one the system tests use (tests/system/testbed.py: ``run_testbed``, with the
test server of tests/servers.py): ``up`` starts a detached ``serve`` process that holds both
context managers open until SIGTERM, so the demo and the tests share one code path and one
clean-up. Needs root, like the tests (network namespaces, nftables).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = Path("/tmp/gridvm-testbed")  # short: QEMU's unix socket paths stay < 108 bytes
STATE = "state.json"
# An example job: the whitelisted port answers, the other one does not.
JOB = (
    "#!/bin/sh\\nfor p in 8080 8081; do\\n"
    "  nc -w 3 192.0.2.10 $p </dev/null || echo $p closed\\ndone\\n"
)


def serve(work: Path) -> None:
    """Run the server and the bed until SIGTERM; write STATE once they are up."""
    sys.path.insert(0, str(REPO))
    from tests.servers import run_server
    from tests.system.testbed import TARGET_IP, TARGET_PORTS, run_testbed

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    starter = REPO / "build" / "starter"
    (work / "tb").mkdir(exist_ok=True)
    with (
        run_server(work / "server", starter_dir=starter if starter.is_dir() else None) as server,
        run_testbed(server, work / "tb") as bed,
    ):
        (work / "env").write_text(
            f"export GRIDVM_URL={server.url}\nexport GRIDVM_TOKEN={server.admin_token}\n"
        )
        state = {
            "pid": os.getpid(),
            "url": server.url,
            "namespaces": [bed.target_ns, *(h.ns for h in bed.hosts)],
            "hosts": {h.name: h.ns for h in bed.hosts},
            "target": f"{TARGET_IP} ports {', '.join(map(str, TARGET_PORTS))}",
        }
        (work / (STATE + ".new")).write_text(json.dumps(state))
        (work / (STATE + ".new")).rename(work / STATE)
        while True:
            time.sleep(3600)


def up(work: Path) -> int:
    if (work / STATE).exists() or (work / "serve.pid").exists():
        print(f"a test bed is already up in {work}: make testbed-down first", file=sys.stderr)
        return 1
    work.mkdir(parents=True, exist_ok=True)
    with (work / "testbed.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, __file__, "serve", "--dir", str(work)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "GRIDVM_ACCEL": os.environ.get("GRIDVM_ACCEL", "tcg")},
        )
    (work / "serve.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 120
    while not (work / STATE).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            log_text = (work / "testbed.log").read_text(errors="replace")[-3000:]
            print(f"the test bed did not come up:\n{log_text}", file=sys.stderr)
            down(work)
            return 1
        time.sleep(0.3)
    state = json.loads((work / STATE).read_text())
    gridvm = REPO / ".venv" / "bin" / "gridvm"
    host1 = state["hosts"]["host1"]
    print(
        f"""test bed up: server {state["url"]}, hosts {", ".join(state["hosts"])}
  (namespaces {", ".join(state["namespaces"])}), target service {state["target"]}
  log: {work / "testbed.log"}

Use the CLI against it (admin token):
  . {work / "env"}
  {gridvm} host list
  printf '{JOB}' >job.sh
  {gridvm} vm run tiny --allow-egress 192.0.2.10:8080 --user-data job.sh --wait
  {gridvm} vm console VM_ID        # 8080 answers, 8081 does not
  {gridvm} vm show VM_ID           # the effective egress rules
  ip netns exec {host1} {gridvm} host-rules
Stop it: make testbed-down"""
    )
    return 0


def down(work: Path) -> int:
    """Stop the serve process (its context managers tidy up), then make sure."""
    if not work.exists():
        print(f"no test bed in {work}")
        return 0
    pid_file = work / "serve.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    state_file = work / STATE
    if state_file.exists():
        for ns in json.loads(state_file.read_text())["namespaces"]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
    shutil.rmtree(work, ignore_errors=True)
    print(f"test bed down: {work} removed")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not yet reaped by its parent) is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down", "serve"])
    parser.add_argument(
        "--dir", type=Path, default=Path(os.environ.get("TESTBED_DIR", DEFAULT_DIR))
    )
    args = parser.parse_args()
    work = args.dir.resolve()
    if args.action == "serve":
        serve(work)
        return 0
    return up(work) if args.action == "up" else down(work)


if __name__ == "__main__":
    sys.exit(main())
