"""``Client``: one object per server and token, with a namespace per resource."""

from __future__ import annotations

from types import TracebackType

import httpx
from pydantic import TypeAdapter

from gridvm.client.builds import Builds
from gridvm.client.certification import Certifications
from gridvm.client.hosts import Hosts
from gridvm.client.identity import Groups, Tokens, Users
from gridvm.client.image_inspection import Inspections
from gridvm.client.image_lists import ImageLists
from gridvm.client.images import Images
from gridvm.client.scheduling import Quotas, Reservations, Share
from gridvm.client.secrets import Secrets, SshKeys
from gridvm.client.settings import check_token, load_settings, normalize_url
from gridvm.client.site_egress import SiteEgress
from gridvm.client.transport import Transport
from gridvm.client.usage import Usage
from gridvm.client.vms import Deployments, Vms
from gridvm.client.volumes import Volumes
from gridvm.schemas.identity import WhoAmI

DEFAULT_TIMEOUT = 30.0

_WHOAMI = TypeAdapter(WhoAmI)
_HEALTH = TypeAdapter(dict[str, str])


class Client:
    """The gridvm API over HTTP.

    >>> with Client("http://127.0.0.1:8750", token) as gv:
    ...     image = gv.images.upload("disk.qcow2", name="analysis")
    ...     deployment = gv.vms.create(image="analysis", count=10, memory_mb=512)

    Errors raise subclasses of ``ApiError``; see ``gridvm.client.errors``.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = normalize_url(url)
        self._t = Transport(self.url, check_token(token), timeout=timeout, transport=transport)
        self.groups = Groups(self._t)
        self.users = Users(self._t)
        self.tokens = Tokens(self._t)
        self.images = Images(self._t)
        self.builds = Builds(self._t)
        self.certifications = Certifications(self._t)
        self.image_lists = ImageLists(self._t)
        self.inspections = Inspections(self._t)
        self.vms = Vms(self._t)
        self.deployments = Deployments(self._t)
        self.hosts = Hosts(self._t)
        self.site_egress = SiteEgress(self._t)
        self.secrets = Secrets(self._t)
        self.ssh_keys = SshKeys(self._t)
        self.share = Share(self._t)
        self.quotas = Quotas(self._t)
        self.reservations = Reservations(self._t)
        self.usage = Usage(self._t)
        self.volumes = Volumes(self._t)

    @classmethod
    def from_settings(
        cls, url: str | None = None, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Client:
        """A client for the configured server (arguments > environment > ``gridvm login``)."""
        settings = load_settings(url, token)
        return cls(settings.url, settings.token, timeout=timeout)

    def whoami(self) -> WhoAmI:
        """Who the token belongs to: name, role and groups."""
        return self._t.get("/whoami", _WHOAMI)

    def health(self) -> dict[str, str]:
        """The server's health (needs no valid token)."""
        return self._t.get("/health", _HEALTH)

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"
