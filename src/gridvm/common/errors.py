"""The errors gridvm raises on purpose.

Each carries a message saying what was wrong and, where useful, a hint saying
what to do. ``http_status`` lets the API map an error to a response without a
table of its own; layers below the API only pick the right class.
"""

from __future__ import annotations


class GridvmError(Exception):
    """Base class: an error whose message is meant for the user."""

    http_status = 500
    code = "internal_error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InvalidInput(GridvmError):
    http_status = 422
    code = "invalid_input"


class Unauthorized(GridvmError):
    http_status = 401
    code = "unauthorized"


class Forbidden(GridvmError):
    http_status = 403
    code = "forbidden"


class NotFound(GridvmError):
    http_status = 404
    code = "not_found"


class Conflict(GridvmError):
    http_status = 409
    code = "conflict"


class PayloadTooLarge(GridvmError):
    http_status = 413
    code = "payload_too_large"


class ImageRejected(InvalidInput):
    """An uploaded file is not an image gridvm will store (bad format, backing file, ...)."""

    code = "image_rejected"


class ToolFailed(GridvmError):
    """An external program (qemu-img, qemu-system, ...) failed."""

    code = "tool_failed"


class HypervisorError(GridvmError):
    code = "hypervisor_error"
