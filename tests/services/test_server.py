"""The server's image-policy settings are checked before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridvm.common.config import ImagePolicySettings
from gridvm.common.errors import InvalidInput
from gridvm.services.server import check_image_policy


def test_image_policy_settings_are_checked(tmp_path: Path) -> None:
    check_image_policy(ImagePolicySettings(block_severity="Critical"))
    with pytest.raises(InvalidInput, match="unknown block severity 'extreme'"):
        check_image_policy(ImagePolicySettings(block_severity="extreme"))
    with pytest.raises(InvalidInput, match="both the endorser's certificate and its key"):
        check_image_policy(ImagePolicySettings(endorser_cert=tmp_path / "c.pem"))
    with pytest.raises(InvalidInput, match="no file"):
        check_image_policy(
            ImagePolicySettings(endorser_cert=tmp_path / "c.pem", endorser_key=tmp_path / "k")
        )
