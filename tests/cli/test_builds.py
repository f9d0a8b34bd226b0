"""``gridvm image build`` and friends: what the CLI refuses or reports without a real build.

Real builds through the CLI are in tests/system/test_debian_images.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli


def test_bad_recipes_fail_before_anything_is_sent(cli: Cli, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\ntemplate: debian-12-minimal\npackages: [jq]\nrun: ls\n")
    assert "run: Input should be a valid list" in cli.fails("image", "build", str(recipe))
    recipe.write_text("name: x\ntemplate: debian-12-minimal\nsize: 3G\n")
    assert "size: unknown key" in cli.fails("image", "build", str(recipe))
    missing = cli.fails("image", "build", str(tmp_path / "nope.yaml"))
    assert "cannot read" in missing and "nope.yaml" in missing
    assert cli.json("image", "builds") == []


def test_unknown_template_is_reported_by_the_server(cli: Cli, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\ntemplate: debian-12-minimal\npackages: [jq]\n")
    error = cli.fails("image", "build", str(recipe), "--no-wait")
    assert "no image 'debian-12-minimal'" in error
    assert "no builds" in cli.ok("image", "builds").stderr
    assert "no build or built image 'bld-000000000000'" in cli.fails(
        "image", "build-log", "bld-000000000000"
    )
