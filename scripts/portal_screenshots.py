"""``make screenshots``: pictures of every portal page into docs/screenshots/.

Starts a throwaway gridvm (server + one agent running tiny VMs, state in a temporary
directory), drives the portal's journey in headless Chromium (the steps the journey test
asserts: tests/system/portal_journey.py) and saves a PNG of each page at 1280x800, and of the
queue at a phone's width (375px). Run from the repository: ``.venv/bin/python
scripts/portal_screenshots.py [OUT_DIR]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO))  # the journey and the throwaway cloud live with the tests
    from tests.system.cloud import run_cloud
    from tests.system.portal_browser import open_browser, playwright_driver
    from tests.system.portal_journey import Shots, run_journey

    from gridvm.images.starter import build_tiny

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"
    starter = REPO / "build" / "starter"
    build_tiny(starter)
    shots = Shots(out)
    # A short base path keeps QEMU's unix socket paths under the 108-byte limit.
    with tempfile.TemporaryDirectory(prefix="gvshots") as tmp:
        base = Path(tmp)
        with (
            run_cloud(base / "c", starter) as cloud,
            playwright_driver() as driver,
            open_browser(driver, base / "chromium", cloud.server.url) as browser,
        ):
            run_journey(browser, cloud, shots)
    for path in shots.taken:
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


if __name__ == "__main__":
    main()
