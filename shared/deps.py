"""The composition root: wires the real adapters once per process; tests replace it."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.platform.secrets import Secrets, secrets_from
from shared.platform.settings import Settings, get_settings

# The adapters import heavy SDKs (BigQuery, Tink, KMS): each is imported when
# it is first built, so a function loads only what its requests use.
if TYPE_CHECKING:
    from google.cloud import bigquery

    from shared.platform.schemas import SchemaCatalog
    from shared.platform.sql_analyzer import SqlAnalyzer
    from shared.platform.warehouse import Warehouse
    from shared.scheduling.auth import GoogleCerts
    from shared.scheduling.dispatch import TaskQueue
    from shared.sources.identity import IdTokens
    from shared.tenancy.api_keys import AuthCache
    from shared.vault.crypto import Crypto


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _real_bigquery_client(settings: Settings) -> bigquery.Client:
    from shared.platform.warehouse import bigquery_client

    return bigquery_client(settings)


@dataclass
class Deps:
    """Adapters behind the ports. Each is built on first use to keep cold starts fast."""

    settings: Settings
    secrets: Secrets
    clock: Callable[[], dt.datetime] = utc_now
    client_factory: Callable[[Settings], bigquery.Client] = _real_bigquery_client
    _warehouse: Warehouse | None = field(default=None, repr=False)
    _catalog: SchemaCatalog | None = field(default=None, repr=False)
    _crypto: Crypto | None = field(default=None, repr=False)
    _auth_cache: AuthCache | None = field(default=None, repr=False)
    _task_queue: TaskQueue | None = field(default=None, repr=False)
    _google_certs: GoogleCerts | None = field(default=None, repr=False)
    _id_tokens: IdTokens | None = field(default=None, repr=False)
    _sql_analyzer: SqlAnalyzer | None = field(default=None, repr=False)

    @property
    def warehouse(self) -> Warehouse:
        if self._warehouse is None:
            from shared.platform.warehouse import Warehouse

            self._warehouse = Warehouse(self.client_factory(self.settings), self.settings)
        return self._warehouse

    @property
    def crypto(self) -> Crypto:
        if self._crypto is None:
            from shared.vault.crypto import crypto_from

            self._crypto = crypto_from(self.settings)
        return self._crypto

    @property
    def auth_cache(self) -> AuthCache:
        if self._auth_cache is None:
            from shared.tenancy.api_keys import AuthCache

            self._auth_cache = AuthCache(self.settings.auth_cache_ttl_seconds)
        return self._auth_cache

    @property
    def task_queue(self) -> TaskQueue:
        if self._task_queue is None:
            from shared.scheduling.dispatch import task_queue_from

            self._task_queue = task_queue_from(self.settings)
        return self._task_queue

    @property
    def google_certs(self) -> GoogleCerts:
        if self._google_certs is None:
            from shared.scheduling.auth import GoogleCerts

            self._google_certs = GoogleCerts(self.settings.google_certs_url)
        return self._google_certs

    @property
    def id_tokens(self) -> IdTokens:
        """The platform's Google ID tokens, presented to AWS STS and Entra (cloud access)."""
        if self._id_tokens is None:
            from shared.sources.identity import id_tokens_from

            self._id_tokens = id_tokens_from(self.settings)
        return self._id_tokens

    @property
    def sql_analyzer(self) -> SqlAnalyzer | None:
        """GoogleSQL's analyzer where one is configured (local stack, tests); else None."""
        if self._sql_analyzer is None and self.settings.sql_analyzer_address:
            from shared.platform.sql_analyzer import analyzer_from

            self._sql_analyzer = analyzer_from(self.settings.sql_analyzer_address)
        return self._sql_analyzer

    @property
    def catalog(self) -> SchemaCatalog:
        # Read on every cold start, not cached across settings changes in tests.
        if self._catalog is None:
            from shared.platform.schemas import load_catalog

            self._catalog = load_catalog(self.settings.schemas_dir)
        return self._catalog


def build_deps(settings: Settings | None = None) -> Deps:
    settings = settings or get_settings()
    return Deps(settings=settings, secrets=secrets_from(settings))


_override: Deps | None = None


@functools.cache
def _default_deps() -> Deps:
    return build_deps()


def deps() -> Deps:
    """The process's dependencies; `use_deps` swaps them (tests, the local stack)."""
    return _override if _override is not None else _default_deps()


def use_deps(replacement: Deps | None) -> None:
    global _override
    _override = replacement
