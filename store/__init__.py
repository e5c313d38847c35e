"""SQLite storage (sqlite-utils, WAL, numbered migrations).

Errors: :class:`StoreError` when a store cannot be opened or migrated; :class:`OutboxError` for a
frame the outbox refuses. A corrupt file is not
an error: it is set aside and a new store started (``HubStore.set_aside`` says where).
"""

from .database import Migration, OpenedStore, StoreError, migrate, open_store
from .hub_store import HubStore, WriteResult
from .outbox import DurableOutbox, OutboxError, PendingFrame, Priority

__all__ = [
    "DurableOutbox",
    "HubStore",
    "Migration",
    "OpenedStore",
    "OutboxError",
    "PendingFrame",
    "Priority",
    "StoreError",
    "WriteResult",
    "migrate",
    "open_store",
]
