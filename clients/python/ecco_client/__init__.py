"""ecco_client: Ecco's API, served by ecco-daemon. Needs no torch."""

from ecco_protocol.version import PROTOCOL_VERSION

from ecco_client.aio.model import AsyncLanguageModel
from ecco_client.blocking import Client, LanguageModel, RequestHandle, connect
from ecco_client.exceptions import (
    BadRequest,
    Cancelled,
    DaemonUnavailable,
    EccoError,
    Forbidden,
    ModelNotFound,
    NotFound,
    ProtocolError,
    RemoteError,
    ResultEvicted,
    ResultExpired,
    Unauthorized,
)
from ecco_client.output import Output

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_VERSION",
    "AsyncLanguageModel",
    "BadRequest",
    "Cancelled",
    "Client",
    "DaemonUnavailable",
    "EccoError",
    "Forbidden",
    "LanguageModel",
    "ModelNotFound",
    "NotFound",
    "Output",
    "ProtocolError",
    "RemoteError",
    "RequestHandle",
    "ResultEvicted",
    "ResultExpired",
    "Unauthorized",
    "connect",
]
