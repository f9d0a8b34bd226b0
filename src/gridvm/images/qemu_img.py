"""Running qemu-img safely: argument lists, a timeout and resource limits.

qemu-img parses untrusted image metadata. Like OpenStack (after OSSA-2015-014),
every call runs under an address-space and CPU-time limit so that a crafted
image cannot make it eat the host's memory or spin forever, and under a wall
clock timeout. Limits are applied with util-linux ``prlimit`` (which sets them
and then execs qemu-img, so the timeout kills qemu-img itself); without
``prlimit`` we fall back to ``preexec_fn``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gridvm.common.errors import ToolFailed

GiB = 1024**3


@dataclass(frozen=True)
class Limits:
    """What one qemu-img run may use."""

    timeout_s: float
    address_space: int = 1 * GiB
    cpu_seconds: int = 30


#: ``qemu-img info`` on an untrusted file (the values OpenStack uses).
INFO_LIMITS = Limits(timeout_s=30, address_space=1 * GiB, cpu_seconds=30)
#: ``qemu-img check`` walks all metadata: a little more room.
CHECK_LIMITS = Limits(timeout_s=120, address_space=1 * GiB, cpu_seconds=60)
#: ``qemu-img convert`` copies the whole disk.
CONVERT_LIMITS = Limits(timeout_s=3600, address_space=2 * GiB, cpu_seconds=3600)
#: ``qemu-img create`` of an overlay: metadata only.
CREATE_LIMITS = Limits(timeout_s=30, address_space=1 * GiB, cpu_seconds=30)

_STDERR_MAX = 2000


class QemuImgFailed(ToolFailed):
    """qemu-img exited with an error, was killed, or ran out of time."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        returncode: int | None,
        stderr: str,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.returncode = returncode
        self.stderr = stderr
        self.timed_out = timed_out


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def qemu_img_binary() -> str:
    path = shutil.which("qemu-img")
    if path is None:
        raise ToolFailed(
            "qemu-img was not found on PATH",
            hint="install it (Debian: apt-get install qemu-utils)",
        )
    return path


def _preexec(limits: Limits) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (limits.address_space, limits.address_space))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))

    return apply


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _STDERR_MAX else "..." + text[-_STDERR_MAX:]


def run(
    args: Sequence[str],
    *,
    limits: Limits,
    ok_codes: Sequence[int] = (0,),
) -> Result:
    """Run ``qemu-img *args`` under ``limits``; raise QemuImgFailed unless the code is ok.

    ``args`` is a list: nothing goes through a shell. File names must be
    absolute paths so qemu-img never reads them as a protocol (``json:``,
    ``nbd:``...).
    """
    argv = [qemu_img_binary(), *args]
    preexec: Callable[[], None] | None = None
    prlimit = shutil.which("prlimit")
    if prlimit is not None:
        argv = [
            prlimit,
            f"--as={limits.address_space}",
            f"--cpu={limits.cpu_seconds}",
            "--",
            *argv,
        ]
    else:
        preexec = _preexec(limits)
    what = f"qemu-img {args[0]}" if args else "qemu-img"
    env = {**os.environ, "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=limits.timeout_s,
            preexec_fn=preexec,  # only when prlimit is missing
            env=env,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        raise QemuImgFailed(
            f"{what} did not finish within {limits.timeout_s:g} s and was stopped",
            hint="the disk may be very large or damaged; retry, or ask an administrator",
            returncode=None,
            stderr=_tail(stderr),
            timed_out=True,
        ) from exc
    except OSError as exc:
        raise ToolFailed(
            f"could not start {what}: {exc}",
            hint="check that qemu-utils is installed and executable",
        ) from exc
    if proc.returncode not in ok_codes:
        stderr = _tail(proc.stderr)
        if proc.returncode < 0:
            reason = f"was killed by signal {-proc.returncode}"
            if proc.returncode == -9 or proc.returncode == -24:  # SIGKILL / SIGXCPU
                reason += " (CPU-time or memory limit reached)"
        else:
            reason = f"failed with exit code {proc.returncode}"
        raise QemuImgFailed(
            f"{what} {reason}: {stderr or 'no error message'}",
            hint="see the qemu-img message above",
            returncode=proc.returncode,
            stderr=stderr,
        )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_json(
    args: Sequence[str], *, limits: Limits, ok_codes: Sequence[int] = (0,)
) -> tuple[int, dict[str, Any]]:
    """Run qemu-img with ``--output=json`` among ``args``; return (exit code, parsed object)."""
    result = run(args, limits=limits, ok_codes=ok_codes)
    try:
        data = json.loads(result.stdout)
    except ValueError as exc:
        raise QemuImgFailed(
            f"qemu-img {args[0]} printed output that is not JSON: {result.stdout[:200]!r}",
            hint="check the installed qemu-utils version (7.2 or later is supported)",
            returncode=result.returncode,
            stderr=_tail(result.stderr),
        ) from exc
    if not isinstance(data, dict):
        raise QemuImgFailed(
            f"qemu-img {args[0]} printed JSON that is not an object",
            hint="check the installed qemu-utils version (7.2 or later is supported)",
            returncode=result.returncode,
            stderr=_tail(result.stderr),
        )
    return result.returncode, data
