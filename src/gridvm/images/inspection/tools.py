"""Running the inspection tools on untrusted data: argv lists, a timeout, limits, bounded output."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

GiB = 1024**3


class ToolError(Exception):
    """A tool failed, ran out of time, or printed more than we read."""


@dataclass(frozen=True)
class ToolLimits:
    timeout_s: float = 30.0
    address_space: int = 1 * GiB
    cpu_seconds: int = 30
    max_output: int = 64 * 1024**2


DEFAULT = ToolLimits()


def binary(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if path is None:
        raise ToolError(f"{name} was not found (Debian: apt-get install {package})")
    return path


def run_tool(
    argv: Sequence[str],
    *,
    limits: ToolLimits = DEFAULT,
    stdin: bytes | None = None,
) -> bytes:
    """Run ``argv`` (no shell) under ``limits``; its standard output, or ToolError."""
    full = list(argv)
    prlimit = shutil.which("prlimit")
    if prlimit is not None:
        full = [prlimit, f"--as={limits.address_space}", f"--cpu={limits.cpu_seconds}", "--", *full]
    try:
        proc = subprocess.run(
            full,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=limits.timeout_s,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{argv[0]} did not finish within {limits.timeout_s:g} s") from exc
    except OSError as exc:
        raise ToolError(f"could not start {argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip()[-500:]
        raise ToolError(f"{argv[0]} failed with exit code {proc.returncode}: {message}")
    if len(proc.stdout) > limits.max_output:
        raise ToolError(f"{argv[0]} printed more than {limits.max_output} bytes")
    return proc.stdout
