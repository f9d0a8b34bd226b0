"""A serial console log made fit for a web page: terminal control sequences removed.

Firmware and kernels clear the screen and set colours with escape sequences; a terminal
obeys them, a <pre> would show them as junk. The page's script (console.js) applies the
same pattern to the text it appends.
"""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), two-byte escapes (ESC c, ESC 7, ...),
# then any C0 control but tab and newline, and DEL.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[@-Z\\-_]|\x1b[0-9=>c]"
    r"|[\x00-\x08\x0b-\x1f\x7f]"
)


def printable_console(text: str) -> str:
    return _CONTROL.sub("", text.replace("\r\n", "\n"))
