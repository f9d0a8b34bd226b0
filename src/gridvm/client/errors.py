"""The errors the SDK raises: what the server said, or why it could not be asked.

Every class derives from ``GridvmError``, so ``str(error)`` is one line for a
person ("message (hint)") and callers can catch the whole family at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from gridvm.common.errors import GridvmError
from gridvm.schemas.consoles import CLOSE_GOING_AWAY, CLOSE_NORMAL
from gridvm.schemas.vms import VmOut


class ConfigError(GridvmError):
    """The SDK does not know which server to talk to, or with which token."""

    code = "config_error"


class ApiError(GridvmError):
    """A request to the gridvm API failed.

    ``status`` is the HTTP status, or ``None`` when no response came back;
    ``code`` is the API's machine-readable error code (``not_found``, ...).
    """

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        code: str = "api_error",
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(status={self.status!r}, code={self.code!r}, {self.message!r})"


class AuthenticationFailed(ApiError):
    """401: no token, or a token the server does not know (revoked, mistyped)."""


class PermissionDenied(ApiError):
    """403: the token is valid but may not do this."""


class NotFoundError(ApiError):
    """404: no such image, VM, deployment, host, user or token (or not one you may see)."""


class ConflictError(ApiError):
    """409: the request clashes with the current state (name taken, VM not stopped, ...)."""


class InvalidRequest(ApiError):
    """400/413/422: the server refused what was asked (limits, bad image, bad value)."""


class ServerError(ApiError):
    """5xx: the server failed; the message says what it knows."""


class ServerUnreachable(ApiError):
    """No answer: the server is down, the URL is wrong, or the network is in the way."""


class ProtocolError(ApiError):
    """The server answered something this SDK does not understand."""


class TransferError(ApiError):
    """An upload or download broke off or arrived damaged."""


class ConsoleClosed(GridvmError):
    """An attached console ended; ``close_code`` is the websocket close code.

    ``normal`` is true for an orderly end: you detached, the VM's serial port closed
    (the VM stopped), or the server or host agent stopped. Otherwise the
    connection broke off or the session failed; the message says how.
    """

    code = "console_closed"

    def __init__(self, message: str, hint: str | None = None, *, close_code: int) -> None:
        super().__init__(message, hint)
        self.close_code = close_code

    @property
    def normal(self) -> bool:
        return self.close_code in (CLOSE_NORMAL, CLOSE_GOING_AWAY)


class UnsafeArchive(GridvmError):
    """A results archive holds something that must not be unpacked (a path outside, a link, ...)."""

    code = "unsafe_archive"


class DestinationNotEmpty(GridvmError):
    """Unpacking would overwrite a folder that holds files already."""

    code = "destination_not_empty"


class WaitTimeout(GridvmError, TimeoutError):
    """VMs did not reach the awaited states in time; ``vms`` is how they were last seen."""

    code = "wait_timeout"

    def __init__(self, message: str, hint: str | None = None, vms: Sequence[VmOut] = ()) -> None:
        super().__init__(message, hint)
        self.vms = list(vms)


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequest,
    422: InvalidRequest,
}


def error_class_for(status: int) -> type[ApiError]:
    """The ``ApiError`` subclass for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else ApiError
