"""The hosts of one scheduling pass as columns (numpy arrays), so that a filter or a
weigher is one vector operation over thousands of hosts instead of a Python loop.

Static facts (arch, zone, labels, state) do not change during a pass, so masks
computed from them are cached by the question asked. Usage changes as VMs are
placed: :meth:`HostTable.take` and :meth:`HostTable.give_back` keep it current.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np
import numpy.typing as npt

from gridvm.scheduler.snapshot import HostSnapshot

Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]


class HostTable:
    def __init__(self, hosts: Sequence[HostSnapshot]) -> None:
        self.hosts = list(hosts)
        self.names = [h.name for h in hosts]
        self.index = {h.name: i for i, h in enumerate(hosts)}
        self.size = len(hosts)
        self.cores = np.array([h.cores for h in hosts], dtype=np.float64)
        self.memory_mb = np.array([h.memory_mb for h in hosts], dtype=np.float64)
        self.disk_gb = np.array([h.disk_gb for h in hosts], dtype=np.float64)
        self.used_cores = np.array([h.used_cores for h in hosts], dtype=np.float64)
        self.used_memory_mb = np.array([h.used_memory_mb for h in hosts], dtype=np.float64)
        self.used_disk_gb = np.array([h.used_disk_gb for h in hosts], dtype=np.float64)
        self.load = np.array([h.load for h in hosts], dtype=np.float64)
        self._static: dict[Hashable, Mask] = {}
        self._cached: dict[str, Mask] = {}

    # --- usage -------------------------------------------------------------------------
    @property
    def free_cores(self) -> Floats:
        return self.cores - self.used_cores

    @property
    def free_memory_mb(self) -> Floats:
        return self.memory_mb - self.used_memory_mb

    @property
    def free_disk_gb(self) -> Floats:
        return self.disk_gb - self.used_disk_gb

    def take(self, host: int, vcpus: int, memory_mb: int, disk_gb: int, image: str) -> None:
        self.used_cores[host] += vcpus
        self.used_memory_mb[host] += memory_mb
        self.used_disk_gb[host] += disk_gb
        # The host will fetch the image: it counts as cached for the rest of the pass.
        self.cached(image)[host] = True

    def give_back(self, host: int, vcpus: int, memory_mb: int, disk_gb: int) -> None:
        self.used_cores[host] -= vcpus
        self.used_memory_mb[host] -= memory_mb
        self.used_disk_gb[host] -= disk_gb

    # --- static facts --------------------------------------------------------------------
    def static_mask(self, key: Hashable, compute: Callable[[HostSnapshot], bool]) -> Mask:
        """``compute`` over every host, once per ``key`` for the pass."""
        mask = self._static.get(key)
        if mask is None:
            mask = np.fromiter((compute(h) for h in self.hosts), dtype=np.bool_, count=self.size)
            self._static[key] = mask
        return mask

    def cached(self, image: str) -> Mask:
        """Hosts that have ``image`` (or will, having been given a VM of it this pass)."""
        mask = self._cached.get(image)
        if mask is None:
            mask = np.fromiter(
                (image in h.cached_images for h in self.hosts), dtype=np.bool_, count=self.size
            )
            self._cached[image] = mask
        return mask
