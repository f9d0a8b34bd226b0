"""Shared pieces of the wire types."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Wire(BaseModel):
    """Base of every request and response body: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


class ErrorBody(Wire):
    """What the API returns with every 4xx/5xx: what was wrong and what to do."""

    error: str
    message: str
    hint: str | None = None
