"""A recipe's part of a build: staged files, the ``run`` script, the hook, the trust class.

The user's commands are written into a script file inside the root and run
there as an unprivileged user, without network: they never become part of a
host command line. The hook itself is a fixed script (:data:`RECIPE_HOOK`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gridvm.schemas.images import TrustClass

from .mmdebstrap import Hook, HookKind, PackageSpec

BUILD_USER = "gridvm-build"
RUN_MARKER = "gridvm-build: run"

# $1: the root. Beside this script: files.list (N<TAB>MODE<TAB>PATH), files/N, run.sh.
RECIPE_HOOK = """\
#!/bin/sh
# gridvm recipe build: add the recipe's files, then run its commands as the
# unprivileged user gridvm-build, without network (a new, empty network namespace).
set -eu
root="$1"
here=$(dirname "$0")
tab=$(printf '\\t')
if [ -s "$here/files.list" ]; then
    echo "gridvm-build: adding files"
    while IFS="$tab" read -r n mode path; do
        # Written from inside the root, so no link in it can point outside.
        chroot "$root" sh -c 'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"' \\
            gridvm-file "$path" "$mode" <"$here/files/$n"
        echo "gridvm-build: added $path ($mode)"
    done <"$here/files.list"
fi
if [ -s "$here/run.sh" ]; then
    echo "gridvm-build: running the commands as gridvm-build, without network"
    chroot "$root" useradd --create-home --user-group --shell /bin/sh gridvm-build
    chroot "$root" chown gridvm-build:gridvm-build /opt
    install -m 0755 "$here/run.sh" "$root/tmp/gridvm-run.sh"
    status=0
    unshare --net -- chroot "$root" env -i HOME=/home/gridvm-build USER=gridvm-build \\
        LOGNAME=gridvm-build LANG=C.UTF-8 \\
        PATH=/usr/local/bin:/usr/bin:/bin \\
        setpriv --reuid=gridvm-build --regid=gridvm-build --init-groups --no-new-privs \\
        /bin/sh /tmp/gridvm-run.sh </dev/null || status=$?
    rm -f "$root/tmp/gridvm-run.sh"
    chroot "$root" chown -R root:root /opt
    chroot "$root" userdel --remove gridvm-build 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
        echo "gridvm-build: the commands failed with status $status"
        exit 1
    fi
fi
"""


@dataclass(frozen=True)
class StagedFile:
    path: str
    mode: str
    content: bytes


def run_script(commands: Sequence[str]) -> str:
    """The script the ``run`` commands become: in order, stop at the first failure,
    with a marker line before each so the log says which one failed."""
    lines = ["#!/bin/sh", "set -e", 'cd "$HOME"']
    for number, command in enumerate(commands, start=1):
        lines.append(f"echo '{RUN_MARKER} {number}/{len(commands)}'")
        lines.append(command)
    return "\n".join(lines) + "\n"


def failed_run_step(log_lines: Sequence[str]) -> int | None:
    """Which ``run`` command (1-based) was running when the commands failed, if any."""
    if not any(line.startswith("gridvm-build: the commands failed") for line in log_lines):
        return None
    number = None
    for line in log_lines:
        if line.startswith(RUN_MARKER + " "):
            number = int(line[len(RUN_MARKER) + 1 :].split("/")[0])
    return number


def stage_recipe(work: Path, files: Sequence[StagedFile], commands: Sequence[str]) -> Hook:
    """Write the hook, its file list and the run script into ``work``; the hook to run."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "files").mkdir()
    listing = []
    for number, staged in enumerate(files):
        (work / "files" / str(number)).write_bytes(staged.content)
        listing.append(f"{number}\t{staged.mode}\t{staged.path}\n")
    (work / "files.list").write_text("".join(listing))
    (work / "run.sh").write_text(run_script(commands) if commands else "")
    hook = work / "gridvm-recipe"
    hook.write_text(RECIPE_HOOK)
    hook.chmod(0o755)
    return Hook(HookKind.customize, script=hook)


@dataclass(frozen=True)
class TrustDecision:
    trust: TrustClass
    reason: str


def decide_trust(
    *,
    template: str,
    template_trust: TrustClass,
    template_mirror: str,
    certified_mirrors: Sequence[str],
    packages: Sequence[PackageSpec],
    repositories: Sequence[str],
    files: int,
    commands: int,
) -> TrustDecision:
    """Trust by construction: a site template + packages only from the site's certified
    repositories, nothing else, gives ``certified``; anything else gives ``user``."""
    why_not = []
    if template_trust != TrustClass.site:
        why_not.append(f"template {template} is not a site template")
    certified = {mirror.rstrip("/") for mirror in certified_mirrors}
    if template_mirror.rstrip("/") not in certified:
        why_not.append(f"the mirror {template_mirror} is not a certified repository")
    if repositories:
        why_not.append(
            f"{len(repositories)} extra repositor{'y' if len(repositories) == 1 else 'ies'}"
        )
    if files:
        why_not.append(f"{files} added file{'s' if files != 1 else ''}")
    if commands:
        why_not.append(f"{commands} run command{'s' if commands != 1 else ''}")
    if why_not:
        return TrustDecision(TrustClass.user, "user: " + "; ".join(why_not))
    listed = ", ".join(str(p) for p in packages) or "no extra packages"
    return TrustDecision(
        TrustClass.certified,
        f"certified by construction: site template {template} + packages from "
        f"{template_mirror.rstrip('/')}: {listed}",
    )
