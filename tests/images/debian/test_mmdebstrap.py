"""The mmdebstrap command line, built as data from what the root is made of."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.images.debian.mmdebstrap import (
    Hook,
    HookKind,
    Mode,
    PackageSpec,
    RootSpec,
    mmdebstrap_argv,
    validate_mirror,
)


def test_argv_for_a_root_with_packages_and_hooks() -> None:
    spec = RootSpec(
        mirror="http://mirror.example.org/debian/",
        packages=(PackageSpec.parse("jq"), PackageSpec.parse("samtools=1.16.1-1")),
    )
    argv = mmdebstrap_argv(
        spec,
        Path("/work/root.tar"),
        hooks=[
            Hook(HookKind.customize, sync_in=Path("/work/guest")),
            Hook(HookKind.customize, script=Path("/work/gridvm-customize")),
        ],
        dpkg_options=["path-exclude=/usr/share/man/*"],
    )
    assert argv == [
        "mmdebstrap",
        "--mode=unshare",
        "--variant=minbase",
        "--format=tar",
        "--verbose",
        "--aptopt=Acquire::Retries 3",
        "--aptopt=APT::Install-Recommends false",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--include=jq,samtools=1.16.1-1",
        "--customize-hook=sync-in /work/guest /",
        "--customize-hook=/work/gridvm-customize",
        "bookworm",
        "/work/root.tar",
        "deb http://mirror.example.org/debian bookworm main",
    ]


def test_extra_sources_follow_the_mirror_and_root_mode_is_explicit() -> None:
    spec = RootSpec(extra_sources=("deb http://apt.example.org/x bookworm main",))
    argv = mmdebstrap_argv(spec, Path("/o.tar"), mode=Mode.root, dpkg_options=[])
    assert "--mode=root" in argv
    assert argv[-2:] == [
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://apt.example.org/x bookworm main",
    ]
    assert not any(a.startswith("--include") for a in argv)


@pytest.mark.parametrize(
    "text", ["Jq", "jq;rm", "-jq", "j", "jq=", "jq=1.6 -y", "$(reboot)", "jq=`x`"]
)
def test_bad_package_specs_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        PackageSpec.parse(text)


def test_package_spec_round_trip() -> None:
    assert str(PackageSpec.parse("bwa=0.7.17-7+b2")) == "bwa=0.7.17-7+b2"
    assert PackageSpec.parse("libc6").version is None
    assert PackageSpec.parse("e2fsprogs=1:1.47.0-2").version == "1:1.47.0-2"


@pytest.mark.parametrize(
    "mirror",
    ["ftp://x/debian", "http://user:pw@x/debian", "http://x/debian?q=1", "http://x/a b", "x"],
)
def test_bad_mirrors_are_refused(mirror: str) -> None:
    with pytest.raises(InvalidInput):
        validate_mirror(mirror)


def test_hook_paths_must_be_plain_absolute_paths() -> None:
    with pytest.raises(InvalidInput):
        Hook(HookKind.customize, script=Path("/work/a b; reboot")).argument()
    with pytest.raises(InvalidInput):
        Hook(HookKind.customize, sync_in=Path("relative/dir")).argument()


@pytest.mark.parametrize(
    "source",
    ["http://x/debian bookworm main", "deb ftp://x/debian bookworm main", "deb http://x\nrm"],
)
def test_bad_extra_sources_are_refused(source: str) -> None:
    with pytest.raises(InvalidInput):
        mmdebstrap_argv(RootSpec(extra_sources=(source,)), Path("/o.tar"))
