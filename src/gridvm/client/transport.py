"""HTTP to the gridvm API: authentication, error translation, response decoding."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from gridvm import __version__
from gridvm.client.errors import (
    ApiError,
    ProtocolError,
    ServerUnreachable,
    TransferError,
    error_class_for,
)

API_PREFIX = "/api/v1"
SERVER_HINT = "is the server running? start it with 'make up' or 'gridvm up'"

T = TypeVar("T")
# A list value repeats the parameter (?state=a&state=b).
Params = Mapping[str, str | int | bool | list[str] | None]


class Transport:
    """One HTTP connection pool to one server, with one token."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"gridvm-client/{__version__}",
        }
        self._http = httpx.Client(
            base_url=url + API_PREFIX,
            headers=self._headers,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    # --- plain requests ---------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send one request; an error status or a failed connection raises an ``ApiError``."""
        with self._translate_errors(method, path):
            response = self._http.request(
                method,
                path,
                params=_clean(params),
                json=json,
                content=content,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        if response.is_error:
            raise api_error(response)
        return response

    def get(self, path: str, into: TypeAdapter[T], params: Params | None = None) -> T:
        return decode(self.request("GET", path, params=params), into)

    def send(self, method: str, path: str, into: TypeAdapter[T], json: Any = None) -> T:
        return decode(self.request(method, path, json=json), into)

    # --- streamed responses ---------------------------------------------------
    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """A response whose body is read in chunks; transport failures become ``ApiError``."""
        with (
            self._translate_errors(method, path),
            self._http.stream(method, path, params=_clean(params), headers=headers) as response,
        ):
            if response.is_error:
                response.read()
                raise api_error(response)
            yield response

    # --- websockets -----------------------------------------------------------
    def websocket(self, path: str, *, max_size: int) -> ClientConnection:
        """Open a websocket to ``path`` with this token; a refused handshake raises the
        ``ApiError`` its HTTP answer stands for. ``max_size`` limits incoming messages."""
        url = "ws" + (self.url + API_PREFIX + path).removeprefix("http")
        try:
            return connect(
                url,
                additional_headers={"Authorization": self._headers["Authorization"]},
                user_agent_header=self._headers["User-Agent"],
                open_timeout=self.timeout,
                max_size=max_size,
                compression=None,
                legacy=True,
            )
        except InvalidStatus as exc:
            answer = exc.response
            raise api_error(
                httpx.Response(
                    answer.status_code,
                    headers=list(answer.headers.raw_items()),
                    content=bytes(answer.body or b""),
                    request=httpx.Request("GET", url),
                )
            ) from exc
        except TimeoutError as exc:
            raise ServerUnreachable(
                f"gridvm at {self.url} did not open the websocket {path} in time",
                hint="the server may be overloaded; try again, or pass a longer timeout",
            ) from exc
        except OSError as exc:
            raise ServerUnreachable(
                f"cannot reach gridvm at {self.url}: {_reason(exc)}", hint=SERVER_HINT
            ) from exc
        except (InvalidURI, InvalidHandshake) as exc:
            raise ProtocolError(
                f"gridvm at {self.url} did not open the websocket {path}: {_reason(exc)}",
                hint="is the URL the gridvm server and not a proxy?",
            ) from exc

    @contextmanager
    def _translate_errors(self, method: str, path: str) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(
                f"gridvm at {self.url} did not answer {method} {path} in time"
                f" ({type(exc).__name__})",
                hint="the server may be overloaded; try again, or pass a longer timeout",
            ) from exc
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
            raise ServerUnreachable(
                f"cannot reach gridvm at {self.url}: {_reason(exc)}", hint=SERVER_HINT
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise TransferError(
                f"the connection to gridvm at {self.url} broke during {method} {path}:"
                f" {_reason(exc)}",
                hint="try again; if it keeps failing, ask an administrator to check the server",
            ) from exc
        except httpx.HTTPError as exc:
            raise ApiError(
                f"{method} {path} to gridvm at {self.url} failed: {_reason(exc)}", hint=SERVER_HINT
            ) from exc


def api_error(response: httpx.Response) -> ApiError:
    """The ``ApiError`` an error response stands for (the server's JSON body when it has one)."""
    cls = error_class_for(response.status_code)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        hint = body.get("hint")
        return cls(
            body["message"],
            hint if isinstance(hint, str) else None,
            status=response.status_code,
            code=str(body.get("error") or "api_error"),
        )
    text = " ".join(response.text.split())[:200]
    reason = response.reason_phrase or "error"
    where = f"{response.request.method} {response.request.url.path}"
    return cls(
        f"gridvm answered {response.status_code} {reason} to {where}"
        + (f": {text}" if text else ""),
        hint="is the URL the gridvm server and not a proxy?",
        status=response.status_code,
    )


def decode(response: httpx.Response, into: TypeAdapter[T]) -> T:
    """The body of ``response`` as ``into``; a body of another shape is a ``ProtocolError``."""
    try:
        return into.validate_json(response.content)
    except ValidationError as exc:
        raise ProtocolError(
            f"unexpected answer from gridvm to {response.request.method}"
            f" {response.request.url.path}: {exc.error_count()} field(s) do not match",
            hint="is the server the same gridvm version as this client?",
            status=response.status_code,
        ) from exc


def _clean(params: Params | None) -> dict[str, str | int | list[str]] | None:
    """Query parameters without the ``None`` ones; booleans as the API spells them."""
    if params is None:
        return None
    out: dict[str, str | int | list[str]] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
