"""The container's vector store, chosen by the settings (``VECTOR_STORE``): PostgreSQL with
pgvector (the default, on the application database) or OpenSearch (``OPENSEARCH_URL``).
Built on first use and kept for the container's life; nothing of the unused adapter is imported."""

from __future__ import annotations

import threading

from shared.knowledge.vectorstore.ports import VectorStore

_store: VectorStore | None = None
_lock = threading.Lock()


def get_vector_store() -> VectorStore:
    global _store
    store = _store
    if store is None:
        with _lock:
            if _store is None:
                _store = _from_settings()
            store = _store
    return store


def set_vector_store(store: VectorStore | None) -> None:
    """Install a store (tests, the local runtime); None: build from the settings on next use."""
    global _store
    with _lock:
        _store = store


def _from_settings() -> VectorStore:
    from shared.config import get_settings

    settings = get_settings()
    if settings.vector_store == "opensearch":
        from shared.knowledge.vectorstore.opensearch import store_from_settings

        return store_from_settings(settings)
    from shared.db.database import get_database
    from shared.knowledge.vectorstore.pgvector import PostgresVectorStore

    return PostgresVectorStore(get_database(), settings.hnsw_ef_search)
