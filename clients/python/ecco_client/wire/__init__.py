"""The wire format: framing, msgpack encoding with binary arrays, and HMAC signing."""

from .codec import Message, decode_message, encode_message, new_request_header
from .errors import ErrorCode
from .signing import ReplayGuard, Signer
from .version import MAGIC, PROTOCOL_MAJOR, PROTOCOL_VERSION

__all__ = [
    "MAGIC",
    "PROTOCOL_MAJOR",
    "PROTOCOL_VERSION",
    "ErrorCode",
    "Message",
    "ReplayGuard",
    "Signer",
    "decode_message",
    "encode_message",
    "new_request_header",
]
