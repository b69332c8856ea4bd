"""The wire format: framing, msgpack encoding with binary arrays, and HMAC signing."""

from ecco_protocol.codec import Message, decode_message, encode_message, new_request_header
from ecco_protocol.errors import ErrorCode
from ecco_protocol.signing import ReplayGuard, Signer
from ecco_protocol.version import MAGIC, PROTOCOL_MAJOR, PROTOCOL_VERSION

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
