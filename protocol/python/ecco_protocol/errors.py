"""Stable error codes shared by the daemon and every client (PROTOCOL.md, "Error codes")."""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    # The message itself could not be read: wrong frame count, magic, msgpack or field types.
    BAD_FRAME = "BAD_FRAME"
    # Well-formed message, but the parameters are wrong for the operation.
    BAD_REQUEST = "BAD_REQUEST"
    UNKNOWN_OPERATION = "UNKNOWN_OPERATION"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    # Security failures are never folded into BAD_REQUEST, so callers can tell them apart.
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
    MODEL_LOAD_FAILED = "MODEL_LOAD_FAILED"
    UNSUPPORTED_MODEL = "UNSUPPORTED_MODEL"
    RESULT_EVICTED = "RESULT_EVICTED"
    RESULT_EXPIRED = "RESULT_EXPIRED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    TOO_LARGE = "TOO_LARGE"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    # The model replica running the job died mid-job (its process ended); the job was not retried.
    REPLICA_LOST = "REPLICA_LOST"
    INTERNAL = "INTERNAL"
