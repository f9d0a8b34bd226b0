"""Reading recipe files in the SDK: checked before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridvm.client.builds import load_recipe
from gridvm.common.errors import InvalidInput

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_the_shipped_example_is_a_packages_only_recipe() -> None:
    recipe = load_recipe(EXAMPLES / "bioinformatics.yaml")
    assert recipe.name == "bioinformatics"
    assert recipe.template == "debian-12-minimal"
    assert recipe.packages == ["bwa=0.7.17-7+b2", "samtools=1.16.1-1", "seqtk=1.3-4"]
    assert recipe.files == [] and recipe.run == [] and recipe.repositories == []


def test_source_files_are_read_relative_to_the_recipe(tmp_path: Path) -> None:
    (tmp_path / "tool.conf").write_text("threads=4\n")
    recipe = load_recipe(
        write(
            tmp_path,
            "name: t\ntemplate: debian-12-minimal\nfiles:\n"
            "  - {path: /etc/tool.conf, source: tool.conf, mode: '0640'}\n"
            '  - {path: /usr/local/bin/go, content: "#!/bin/sh\\n", mode: 0755}\n'
            "run:\n  - echo hi\n",
        )
    )
    assert [(f.path, f.content, f.source, f.mode) for f in recipe.files] == [
        ("/etc/tool.conf", "threads=4\n", None, "0640"),
        ("/usr/local/bin/go", "#!/bin/sh\n", None, "0755"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: t\ntemplate: debian-12-minimal\npackges: [jq]\n", "packges: unknown key"),
        ("name: [t\n", "is not valid YAML"),
        ("- a\n- b\n", "must hold a mapping"),
        ("template: debian-12-minimal\n", "name: Field required"),
        ("name: t\ntemplate: d\npackages: ['jq; reboot']\n", "is not a Debian package"),
        ("name: t\ntemplate: d\nfiles: [{path: etc/x, content: a}]\n", "absolute file path"),
        ("name: t\ntemplate: d\nfiles: [{path: /a/../b, content: a}]\n", "without '..'"),
        ("name: t\ntemplate: d\nfiles: [{path: /x, content: a, mode: '4755'}]\n", "no setuid"),
        ("name: t\ntemplate: d\nfiles: [{path: /x}]\n", "exactly one of 'content' or 'source'"),
        ("name: t\ntemplate: d\nfiles: [{path: /x, source: missing.txt}]\n", "cannot read"),
        ("name: t\ntemplate: d\nrepositories: ['http://x y z']\n", "one-line apt source"),
    ],
)
def test_bad_recipes_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_recipe(write(tmp_path, text))
    assert message in str(caught.value)
