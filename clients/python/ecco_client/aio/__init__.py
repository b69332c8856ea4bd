"""The asyncio client: the core that the blocking client wraps (as jupyter_client does)."""

from ecco_client.aio.client import AsyncClient, Event, RequestStream, connect

__all__ = ["AsyncClient", "Event", "RequestStream", "connect"]
