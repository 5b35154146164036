"""The container's model services, wired to its database, cache and KMS (ports with
production defaults; tests build the classes with their own)."""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: a function pays only for what it calls
    from shared.models.gateway import ModelGateway
    from shared.models.resolver import ModelResolver
    from shared.models.service import ModelService
    from shared.models.usage import UsageService

_lock = threading.Lock()


@cache
def model_resolver() -> ModelResolver:
    from shared.config import get_settings
    from shared.db.database import get_database
    from shared.models.resolver import ModelResolver

    return ModelResolver(get_database(), get_settings().model_catalog_ttl_s)


def usage_service() -> UsageService:
    from shared.cache.factory import get_kv_store
    from shared.db.database import get_database
    from shared.models.usage import UsageService
    from shared.tenancy.directory import tenant_directory

    return UsageService(get_database(), get_kv_store(), tenant_directory)


@cache
def model_gateway() -> ModelGateway:
    from shared.cache.factory import get_kv_store
    from shared.config import get_settings
    from shared.db.database import get_database
    from shared.models.credentials import default_cipher
    from shared.models.gateway import ModelGateway
    from shared.models.resilience import RetryPolicy
    from shared.models.types import Timeouts

    settings = get_settings()
    return ModelGateway(get_database(), model_resolver(), usage_service(), get_kv_store(), default_cipher,
                        retry=RetryPolicy(max_attempts=settings.model_max_attempts),
                        timeouts={kind: Timeouts(connect_s=settings.model_connect_timeout_s, read_s=read_s)
                                  for kind, read_s in (("chat", settings.model_chat_read_timeout_s),
                                                       ("embedding", settings.model_embedding_read_timeout_s),
                                                       ("rerank", settings.model_embedding_read_timeout_s),
                                                       ("test", settings.model_test_read_timeout_s))})


def model_service() -> ModelService:
    from shared.db.database import get_database
    from shared.models.credentials import default_cipher
    from shared.models.service import ModelService

    return ModelService(get_database(), model_resolver(), default_cipher,
                        lambda tenant_id, spec, key, trusted: model_gateway().test_spec(tenant_id, spec, key,
                                                                                        trusted=trusted))


def reset_model_services() -> None:
    """Forget the cached services (tests and the local runtime change settings)."""
    with _lock:
        model_resolver.cache_clear()
        model_gateway.cache_clear()
