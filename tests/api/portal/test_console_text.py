"""The console page shows a terminal's output as text: no escape sequences as junk."""

from __future__ import annotations

import pytest

from gridvm.api.portal.console_text import printable_console


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        # SeaBIOS resets and clears the screen before it prints anything.
        ("\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16)", "SeaBIOS (version 1.16)"),
        ("[  OK  ] \x1b[0;32mStarted\x1b[0m sshd", "[  OK  ] Started sshd"),
        ("\x1b]0;root@vm: ~\x07$ ls", "$ ls"),  # a window title (OSC)
        ("line one\r\nline two\r\n", "line one\nline two\n"),
        ("tabs\tstay\nbell\x07 and backspace\x08 go", "tabs\tstay\nbell and backspace go"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),  # escaped by the page
    ],
)
def test_control_sequences_are_removed_and_text_kept(raw: str, shown: str) -> None:
    assert printable_console(raw) == shown
