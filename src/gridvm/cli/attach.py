"""``gridvm vm console ID --attach``: an interactive serial console through the server.

On a terminal, the terminal goes to raw mode (every key reaches the guest,
Ctrl-C included) and Ctrl-] detaches. When stdin is not a terminal (a pipe, a
file, a test), what it holds is typed into the console as it comes; at its end
the command goes on printing until the console has been quiet for ``linger``
seconds, then detaches. The guest's output goes to stdout, our own lines to
stderr.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import BinaryIO

import typer

from gridvm.cli.errors import fail
from gridvm.client import Client, ConsoleAttachment, ConsoleClosed

ESCAPE = b"\x1d"  # Ctrl-]
READ_BYTES = 4096
POLL_S = 0.1


def attach_console(gv: Client, vm_id: str, linger: float) -> None:
    stdin = sys.stdin.buffer
    console = gv.vms.attach(vm_id)
    ended: ConsoleClosed | None = None
    try:
        if stdin.isatty():
            ended = _interactive(console, stdin)
        else:
            ended = _scripted(console, stdin, linger)
    finally:
        if ended is None:
            console.close()
    if ended is None:
        typer.echo(f"Detached from VM {vm_id}.", err=True)
    elif ended.normal:
        typer.echo(f"{ended.message[0].upper()}{ended.message[1:]}.", err=True)
    else:
        fail(ended.message, hint=f"its console log: gridvm vm console {vm_id}")


def _print(data: bytes) -> None:
    typer.echo(data, nl=False)


def _scripted(console: ConsoleAttachment, stdin: BinaryIO, linger: float) -> ConsoleClosed | None:
    """Type stdin into the console; after its end, detach once output has been quiet for
    ``linger`` s. Returns how the session ended if it was not us who detached."""
    input_ended: list[float] = []
    read = getattr(stdin, "read1", stdin.read)

    def feed() -> None:
        try:
            while chunk := read(READ_BYTES):
                console.send(chunk)
        except ConsoleClosed:
            pass
        finally:
            input_ended.append(time.monotonic())

    threading.Thread(target=feed, name="gridvm-console-input", daemon=True).start()
    last_output = time.monotonic()
    while True:
        try:
            _print(console.recv(timeout=POLL_S))
            last_output = time.monotonic()
        except TimeoutError:
            if input_ended and time.monotonic() - max(last_output, input_ended[0]) >= linger:
                return None
        except ConsoleClosed as end:
            return end


def _interactive(console: ConsoleAttachment, stdin: BinaryIO) -> ConsoleClosed | None:
    """Raw terminal: keys go to the guest as they are typed; Ctrl-] detaches."""
    import termios
    import tty

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    detach = threading.Event()

    def keys() -> None:
        try:
            while data := os.read(fd, READ_BYTES):
                escape = data.find(ESCAPE)
                if escape >= 0:
                    if escape:
                        console.send(data[:escape])
                    break
                console.send(data)
        except (ConsoleClosed, OSError):
            pass
        finally:
            detach.set()

    typer.echo(f"Connected to VM {console.vm_id}; Ctrl-] to detach", err=True)
    tty.setraw(fd)
    try:
        threading.Thread(target=keys, name="gridvm-console-keys", daemon=True).start()
        while not detach.is_set():
            try:
                _print(console.recv(timeout=POLL_S))
            except TimeoutError:
                continue
            except ConsoleClosed as end:
                return end
        return None
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        typer.echo("", err=True)  # the guest's last line may have no end
