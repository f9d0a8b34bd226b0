"""Running the host's network tools (ip, sysctl, nft): argv lists only, bounded in time,
a missing tool or a hang reported as ToolFailed with what to install."""

from __future__ import annotations

import subprocess

from gridvm.common.errors import ToolFailed

INSTALL_HINT = "install nftables, iproute2 and procps (scripts/install-system-deps.sh)"


def call_tool(
    argv: list[str], timeout: float, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; its exit status is the caller's to judge."""
    try:
        return subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise ToolFailed(f"cannot run {argv[0]}: {exc.strerror}", hint=INSTALL_HINT) from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(f"{argv[0]} did not finish in {timeout:.0f} s") from exc
