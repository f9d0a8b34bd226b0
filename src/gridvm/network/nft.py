"""Apply a rendered gridvm rule set with nft, and read the live tables back.

Every call is an argv list (no shell); the script goes to nft on stdin. A
``prefix`` runs nft somewhere else, e.g. ``("ip", "netns", "exec", NAME)``
in tests. :meth:`Nft.apply` checks the script with ``nft -c`` first, then
loads it in one ``nft -f`` transaction (the script itself deletes and
re-creates the tables, so the old rules hold until the new ones replace them).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

from gridvm.common.errors import ToolFailed
from gridvm.network.ruleset import TABLE, delete_script
from gridvm.network.tools import call_tool

FAMILIES = ("bridge", "inet")


class Nft:
    def __init__(self, prefix: Sequence[str] = (), nft: str = "nft", timeout: float = 30.0) -> None:
        self._argv = [*prefix, nft]
        self._timeout = timeout

    def check(self, script: str) -> None:
        """Raise ToolFailed (with nft's message) if the kernel would refuse ``script``."""
        self._run(["-c", "-f", "-"], script, "check the gridvm rule set")

    def apply(self, script: str) -> None:
        """Check, then load ``script`` atomically; on a failed check nothing changes."""
        self.check(script)
        self._run(["-f", "-"], script, "apply the gridvm rule set")

    def remove(self) -> None:
        """Remove the gridvm tables (nothing else); fine if they are already gone."""
        self._run(["-f", "-"], delete_script(), "remove the gridvm tables")

    def live(self) -> dict[str, list[dict[str, Any]]]:
        """The live gridvm tables as nft JSON objects (``nft -j list table``), per family.

        A family whose table does not exist maps to an empty list.
        """
        result: dict[str, list[dict[str, Any]]] = {}
        for family in FAMILIES:
            proc = self._call(["-j", "list", "table", family, TABLE], None)
            if proc.returncode != 0:
                if "No such file or directory" in proc.stderr:
                    result[family] = []
                    continue
                raise _failed(f"read the live {family} {TABLE} table", proc)
            document = json.loads(proc.stdout)
            result[family] = [
                item for item in document.get("nftables", []) if "metainfo" not in item
            ]
        return result

    def live_text(self) -> str:
        """The live gridvm tables as nft prints them (for an operator to read)."""
        parts = []
        for family in FAMILIES:
            proc = self._call(["list", "table", family, TABLE], None)
            if proc.returncode == 0:
                parts.append(proc.stdout)
        return "".join(parts)

    def _run(self, args: list[str], stdin: str, what: str) -> None:
        proc = self._call(args, stdin)
        if proc.returncode != 0:
            raise _failed(what, proc)

    def _call(self, args: list[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        return call_tool([*self._argv, *args], self._timeout, stdin)


def _failed(what: str, proc: subprocess.CompletedProcess[str]) -> ToolFailed:
    message = proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}"
    return ToolFailed(f"nft could not {what}: {message}")
