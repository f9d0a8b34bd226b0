"""A recipe's part of a build: the run script, the staged files, the trust decision."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gridvm.images.debian.mmdebstrap import PackageSpec
from gridvm.images.debian.recipe import (
    StagedFile,
    decide_trust,
    failed_run_step,
    run_script,
    stage_recipe,
)
from gridvm.images.debian.rootfs import bootstrap_failure
from gridvm.schemas.images import TrustClass

MIRROR = "http://deb.debian.org/debian"


def test_run_script_runs_the_commands_in_order_and_stops_at_the_first_failure(
    tmp_path: Path,
) -> None:
    script = tmp_path / "run.sh"
    script.write_text(run_script(["echo one", "echo 'two $HOME'", "false", "echo never"]))
    done = subprocess.run(
        ["sh", str(script)], capture_output=True, text=True, env={"HOME": str(tmp_path)}
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "gridvm-build: run 1/4",
        "one",
        "gridvm-build: run 2/4",
        "two $HOME",
        "gridvm-build: run 3/4",
    ]
    lines = [*done.stdout.splitlines(), "gridvm-build: the commands failed with status 1"]
    assert failed_run_step(lines) == 3
    assert failed_run_step(done.stdout.splitlines()) is None  # they did not fail (yet)


def test_staging_writes_files_and_list_but_no_command_into_the_hook(tmp_path: Path) -> None:
    hook = stage_recipe(
        tmp_path / "r",
        [StagedFile("/etc/my tool.conf", "0640", b"x=1\n")],
        ["touch /tmp/$(id -u)"],
    )
    assert hook.script is not None and hook.script.stat().st_mode & 0o111
    assert (tmp_path / "r" / "files.list").read_text() == "0\t0640\t/etc/my tool.conf\n"
    assert (tmp_path / "r" / "files" / "0").read_bytes() == b"x=1\n"
    assert "touch /tmp/$(id -u)" not in hook.script.read_text()
    assert "touch /tmp/$(id -u)" in (tmp_path / "r" / "run.sh").read_text()


def decide(**changes: object) -> tuple[TrustClass, str]:
    args: dict[str, object] = {
        "template": "debian-12-minimal",
        "template_trust": TrustClass.site,
        "template_mirror": MIRROR,
        "certified_mirrors": [MIRROR + "/"],
        "packages": [PackageSpec.parse("jq"), PackageSpec.parse("bwa=0.7.17-7+b2")],
        "repositories": [],
        "files": 0,
        "commands": 0,
        **changes,
    }
    decision = decide_trust(**args)  # type: ignore[arg-type]
    return decision.trust, decision.reason


def test_site_template_and_certified_packages_only_is_certified() -> None:
    trust, reason = decide()
    assert trust == TrustClass.certified
    assert reason == (
        "certified by construction: site template debian-12-minimal + packages from "
        "http://deb.debian.org/debian: jq, bwa=0.7.17-7+b2"
    )


def test_anything_else_is_user_with_every_reason() -> None:
    trust, reason = decide(repositories=["deb http://x/y bookworm main"], files=2, commands=1)
    assert trust == TrustClass.user
    assert reason == "user: 1 extra repository; 2 added files; 1 run command"
    trust, reason = decide(certified_mirrors=["http://other/debian"])
    assert trust == TrustClass.user and "is not a certified repository" in reason
    trust, reason = decide(template_trust=TrustClass.user)
    assert trust == TrustClass.user and "not a site template" in reason


def test_apt_errors_become_one_clear_reason() -> None:
    assert (
        bootstrap_failure(["I: x", "E: Unable to locate package no-such-package-xyz", "E: other"])
        == "unknown package 'no-such-package-xyz'"
    )
    assert (
        bootstrap_failure(["E: Version '9.9' for 'jq' was not found"])
        == "package 'jq' has no version '9.9'"
    )
    assert bootstrap_failure(["E: mmdebstrap failed to run"]) == "E: mmdebstrap failed to run"
    assert bootstrap_failure([]) == "mmdebstrap failed"
