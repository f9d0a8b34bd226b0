"""The ``gridvm`` command: the user CLI plus the server, agent and up commands."""

from __future__ import annotations

from gridvm.cli.app import app
from gridvm.daemons.commands import register

register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
