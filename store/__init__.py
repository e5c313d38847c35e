"""SQLite storage (sqlite-utils, WAL, numbered migrations).

Errors: :class:`StoreError` when a store cannot be opened or migrated. A corrupt file is not
an error: it is set aside and a new store started (``HubStore.set_aside`` says where).
"""

from .database import Migration, OpenedStore, StoreError, migrate, open_store
from .hub_store import HubStore, WriteResult

__all__ = ["HubStore", "Migration", "OpenedStore", "StoreError", "WriteResult", "migrate", "open_store"]
