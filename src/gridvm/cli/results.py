"""``gridvm vm results``: download job results and unpack them, one folder per VM."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import typer

from gridvm.cli import output
from gridvm.cli.errors import exit_if, fail, for_each
from gridvm.cli.progress import transfer_bar
from gridvm.cli.state import client, wants_json
from gridvm.client import Unpacked, extract_results
from gridvm.common.units import format_size
from gridvm.schemas.vms import VmOut

DEPLOYMENT_PREFIX = "dep-"
# A VM name as the server allows it: safe as a folder name (no '/', no leading '.').
_FOLDER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def download_results(ctx: typer.Context, ref: str, directory: Path, force: bool) -> None:
    """Results of the VM ``ref``, or of every VM of the deployment ``ref`` that has some."""
    gv = client(ctx)
    skipped: list[VmOut] = []
    if ref.startswith(DEPLOYMENT_PREFIX):
        vms = gv.deployments.get(ref).vms
        wanted = [vm for vm in vms if vm.results_bytes is not None]
        skipped = [vm for vm in vms if vm.results_bytes is None]
    else:
        # One VM: ask even if it shows no results, so that the server says why.
        wanted = [gv.vms.get(ref)]
    for vm in skipped:
        output.note(f"no results for {vm.name} ({vm.state.value})")
    if not wanted:
        fail(
            f"no VM of deployment {ref} has results",
            hint="results appear when a job that writes to $GRIDVM_OUTPUT ends",
        )
    folders = folder_names(wanted)
    targets = {vm.id: directory / folders[vm.id] for vm in wanted}
    _refuse_to_overwrite(list(targets.values()), force)
    directory.mkdir(parents=True, exist_ok=True)

    known = [vm.results_bytes for vm in wanted]
    total = None if None in known else sum(n or 0 for n in known)
    what = wanted[0].name if len(wanted) == 1 else f"{len(wanted)} VMs"
    with (
        transfer_bar(f"downloading the results of {what}", total) as bar,
        tempfile.TemporaryDirectory(dir=directory, prefix=".gridvm-results-") as temp,
    ):
        received = 0  # bytes of the VMs already through

        def one(vm: VmOut) -> tuple[VmOut, Unpacked]:
            nonlocal received
            archive = Path(temp) / f"{vm.id}.tar"
            offset = received
            try:
                received += gv.vms.results(vm.id, archive, progress=lambda n: bar(offset + n))
                unpacked = extract_results(archive, targets[vm.id], replace=force)
            finally:
                archive.unlink(missing_ok=True)
            if not wants_json(ctx):
                output.info(
                    f"{vm.name}: {_files(unpacked.files)}, {format_size(unpacked.bytes)}"
                    f" in {unpacked.path}"
                )
            return vm, unpacked

        done, failed = for_each(wanted, one)
    if wants_json(ctx):
        output.print_json(
            {
                "downloaded": [
                    {
                        "vm": vm.id,
                        "name": vm.name,
                        "path": str(unpacked.path),
                        "files": unpacked.files,
                        "bytes": unpacked.bytes,
                    }
                    for vm, unpacked in done
                ],
                "skipped": [
                    {"vm": vm.id, "name": vm.name, "state": vm.state.value} for vm in skipped
                ],
            }
        )
    exit_if(failed or not done)


def folder_names(vms: list[VmOut]) -> dict[str, str]:
    """The folder of each VM's results: its name, or its id when the name cannot be one."""
    counts: dict[str, int] = {}
    for vm in vms:
        counts[vm.name] = counts.get(vm.name, 0) + 1
    return {
        vm.id: vm.name if _FOLDER_RE.fullmatch(vm.name) and counts[vm.name] == 1 else vm.id
        for vm in vms
    }


def _refuse_to_overwrite(targets: list[Path], force: bool) -> None:
    if force:
        return
    busy = [t for t in targets if t.is_symlink() or (t.exists() and not _empty_dir(t))]
    if busy:
        more = f" (and {len(busy) - 1} more)" if len(busy) > 1 else ""
        fail(
            f"{busy[0]} exists and is not empty{more}",
            hint="pass --force to replace it with the downloaded results, or -d another folder",
        )


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _files(n: int) -> str:
    return "1 file" if n == 1 else f"{n} files"
