"""The asyncio client: the core that the blocking client is built from (as jupyter_client does)."""

from ecco_client.aio.client import AsyncClient, connect
from ecco_client.aio.model import AsyncLanguageModel, TokenStream
from ecco_client.aio.request import Event, RequestStream

__all__ = ["AsyncClient", "AsyncLanguageModel", "Event", "RequestStream", "TokenStream", "connect"]
