"""Running the host programs the build needs, with errors that say what to do.

Every external program goes through :func:`run` so that a failure always becomes
a :class:`~gridvm.common.errors.ToolFailed` carrying the program's own error
output, instead of a bare ``CalledProcessError`` traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from gridvm.common.errors import ToolFailed

# Which Debian package provides each program, for the hint in ToolFailed.
_PROVIDERS = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg-deb": "dpkg",
    "mkfs.ext4": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "qemu-img": "qemu-utils",
}

_SBIN_DIRS = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])
DEFAULT_TIMEOUT_S = 600.0


def progress(message: str) -> None:
    """One line of build progress, on stderr so stdout stays clean for callers."""
    print(f"tiny: {message}", file=sys.stderr, flush=True)


def require(program: str) -> str:
    """Absolute path of ``program``, or ToolFailed naming the package to install."""
    # mkfs.ext4 and debugfs live in /usr/sbin, which a user's PATH often lacks.
    found = shutil.which(program) or shutil.which(program, path=_SBIN_DIRS)
    if found is None:
        package = _PROVIDERS.get(program, program)
        raise ToolFailed(f"{program} not found", hint=f"apt-get install {package}")
    return found


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    merge_stderr: bool = False,
) -> str:
    """Run a program and return its stdout; raise ToolFailed if it fails or times out.

    With ``merge_stderr`` the result holds stderr too, for programs that report
    problems there without failing.
    """
    argv = [str(arg) for arg in args]
    argv[0] = require(argv[0])
    full_env = None if env is None else {**os.environ, **env}
    name = Path(argv[0]).name
    try:
        completed = subprocess.run(
            argv,
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(f"{name} did not finish within {timeout:.0f} s") from exc
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip().splitlines()
        last_lines = " / ".join(detail[-5:]) or "no output"
        raise ToolFailed(f"{name} failed with exit status {completed.returncode}: {last_lines}")
    return completed.stdout
