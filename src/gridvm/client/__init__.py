"""The gridvm Python SDK: the REST API over httpx, with the wire types of ``gridvm.schemas``.

>>> from gridvm.client import Client, wait_for_vms
>>> with Client.from_settings() as gv:            # GRIDVM_URL/GRIDVM_TOKEN or gridvm login
...     dep = gv.vms.create(image="tiny", count=4, memory_mb=256, walltime_s=600)
...     vms = wait_for_vms(gv, dep.vms, timeout=900)
...     gv.vms.results(vms[0].id, "results.tar")
...     extract_results("results.tar", "results/" + vms[0].name)
"""

from gridvm.client.client import DEFAULT_TIMEOUT, Client
from gridvm.client.consoles import ConsoleAttachment
from gridvm.client.errors import (
    ApiError,
    AuthenticationFailed,
    ConfigError,
    ConflictError,
    ConsoleClosed,
    DestinationNotEmpty,
    InvalidRequest,
    NotFoundError,
    PermissionDenied,
    ProtocolError,
    ServerError,
    ServerUnreachable,
    TransferError,
    UnsafeArchive,
    WaitTimeout,
)
from gridvm.client.results import Unpacked, extract_results
from gridvm.client.settings import Settings, config_path, load_settings, save_settings
from gridvm.client.vms import VmPage
from gridvm.client.wait import DEFAULT_UNTIL, state_counts, wait_for_vms

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_UNTIL",
    "ApiError",
    "AuthenticationFailed",
    "Client",
    "ConfigError",
    "ConflictError",
    "ConsoleAttachment",
    "ConsoleClosed",
    "DestinationNotEmpty",
    "InvalidRequest",
    "NotFoundError",
    "PermissionDenied",
    "ProtocolError",
    "ServerError",
    "ServerUnreachable",
    "Settings",
    "TransferError",
    "Unpacked",
    "UnsafeArchive",
    "VmPage",
    "WaitTimeout",
    "config_path",
    "extract_results",
    "load_settings",
    "save_settings",
    "state_counts",
    "wait_for_vms",
]
