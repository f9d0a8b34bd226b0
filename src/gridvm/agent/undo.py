"""An undo stack for multi-step set-ups (as Incus's revert): if a later step fails,
everything the earlier steps made is taken down again, newest first."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)


class UndoStack:
    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], None]]] = []
        self._committed = False

    def push(self, what: str, undo: Callable[[], None]) -> None:
        self._steps.append((what, undo))

    def commit(self) -> None:
        """Keep everything: the set-up succeeded."""
        self._committed = True

    def rollback(self) -> None:
        while self._steps:
            what, undo = self._steps.pop()
            try:
                undo()
            except Exception:
                log.exception("could not undo %s", what)

    def __enter__(self) -> UndoStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or not self._committed:
            self.rollback()
