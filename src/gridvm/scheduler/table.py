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
        # Kept up to date as VMs are placed (not derived on each use: a pass asks often).
        self.free_cores = self.cores - np.array([h.used_cores for h in hosts], dtype=np.float64)
        self.free_memory_mb = self.memory_mb - np.array(
            [h.used_memory_mb for h in hosts], dtype=np.float64
        )
        self.free_disk_gb = self.disk_gb - np.array(
            [h.used_disk_gb for h in hosts], dtype=np.float64
        )
        self.tracks_disk = bool((self.disk_gb > 0).any())
        self.load = np.array([h.load for h in hosts], dtype=np.float64)
        self.load_known = bool(self.load.any())
        self._static: dict[Hashable, Mask] = {}
        self._cached: dict[str, Mask] = {}
        self._any_cached: dict[str, bool] = {}

    # --- usage -------------------------------------------------------------------------
    def take(self, host: int, vcpus: int, memory_mb: int, disk_gb: int, image: str) -> None:
        self.free_cores[host] -= vcpus
        self.free_memory_mb[host] -= memory_mb
        self.free_disk_gb[host] -= disk_gb
        # The host will fetch the image: it counts as cached for the rest of the pass.
        self.cached(image)[host] = True
        self._any_cached[image] = True

    def give_back(self, host: int, vcpus: int, memory_mb: int, disk_gb: int) -> None:
        self.free_cores[host] += vcpus
        self.free_memory_mb[host] += memory_mb
        self.free_disk_gb[host] += disk_gb

    # --- static facts --------------------------------------------------------------------
    def static_mask(self, key: Hashable, compute: Callable[[HostSnapshot], bool]) -> Mask:
        """``compute`` over every host, once per ``key`` for the pass."""
        mask = self._static.get(key)
        if mask is None:
            mask = np.fromiter((compute(h) for h in self.hosts), dtype=np.bool_, count=self.size)
            self._static[key] = mask
        return mask

    def any_cached(self, image: str) -> bool:
        known = self._any_cached.get(image)
        if known is None:
            known = self._any_cached[image] = bool(self.cached(image).any())
        return known

    def cached(self, image: str) -> Mask:
        """Hosts that have ``image`` (or will, having been given a VM of it this pass)."""
        mask = self._cached.get(image)
        if mask is None:
            mask = np.fromiter(
                (image in h.cached_images for h in self.hosts), dtype=np.bool_, count=self.size
            )
            self._cached[image] = mask
        return mask
