from __future__ import annotations

from gridvm.scheduler import QuotaBook, QuotaLimit, Usage
from gridvm.scheduler.quotas import group_and_parents
from tests.scheduler.helpers import vm


def test_group_paths_include_every_parent() -> None:
    assert group_and_parents("a/b/c") == ["a/b/c", "a/b", "a"]
    assert group_and_parents("") == []


def test_a_quota_refuses_what_would_go_over_and_counts_what_starts() -> None:
    book = QuotaBook(
        {("group", "physics"): QuotaLimit(cores=4), ("user", "alice"): QuotaLimit(vms=2)},
        {("group", "physics"): Usage(cores=2, memory_mb=512, vms=2)},
    )
    v = vm("v", cpus=2, group="physics/cms", user="bob")
    assert book.refusal([v]) is None
    book.add([v])
    refusal = book.refusal([vm("w", group="physics", user="bob")])
    assert refusal == "group physics is at its quota: 4 of 4 cores in use"
    alice = [vm(f"a{i}", group="bio", user="alice") for i in range(3)]
    assert book.refusal(alice) == "user alice is at its quota: 0 of 2 VMs in use"
    assert book.refusal(alice[:2]) is None
