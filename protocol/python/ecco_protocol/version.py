"""The protocol version, kept in exactly one place; PROTOCOL.md is tested against it."""

PROTOCOL_VERSION = "1.1"
PROTOCOL_MAJOR = int(PROTOCOL_VERSION.split(".")[0])
# First frame of every message: lets either side reject foreign traffic before parsing anything.
MAGIC = b"ecco1"
