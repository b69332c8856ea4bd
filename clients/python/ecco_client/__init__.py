"""ecco_client: Ecco's API, served by ecco-daemon. Needs no torch."""

from .blocking import Client, RequestHandle, connect
from .exceptions import (
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
    Unauthorized,
)
from .model import AsyncLanguageModel, LanguageModel
from .output import Output
from .wire.version import PROTOCOL_VERSION

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
    "Unauthorized",
    "connect",
]
