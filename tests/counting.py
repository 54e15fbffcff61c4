"""Counts the BigQuery REST calls and query jobs a piece of code makes, deterministically.

The real client talks HTTP through one `requests` session (`client._http`);
wrapping its `request` method sees every call the client makes, retries
included, without mocking anything: the calls still reach the emulator.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.cloud import bigquery

from shared.platform.settings import Settings
from shared.platform.warehouse import bigquery_client

# Paths name projects, datasets, tables and job ids: reduce them to a kind.
_KINDS = (
    (re.compile(r"/queries$"), "jobs.query"),
    (re.compile(r"/queries/[^/]+$"), "jobs.getQueryResults"),
    (re.compile(r"/jobs$"), "jobs.insert"),
    (re.compile(r"/jobs/[^/]+$"), "jobs.get"),
    (re.compile(r"/insertAll$"), "tabledata.insertAll"),
    (re.compile(r"/tables/[^/]+/data$"), "tabledata.list"),
    (re.compile(r"/tables/[^/]+$"), "tables.{verb}"),
    (re.compile(r"/tables$"), "tables.{list_or_insert}"),
    (re.compile(r"/datasets/[^/]+$"), "datasets.{verb}"),
    (re.compile(r"/datasets$"), "datasets.{list_or_insert}"),
)
_VERBS = {"GET": "get", "POST": "insert", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def call_kind(method: str, url: str) -> str:
    """`jobs.query`, `tables.get`, ...: the REST method a request is."""
    path = url.split("?", 1)[0]
    for pattern, kind in _KINDS:
        if pattern.search(path):
            return kind.format(
                verb=_VERBS.get(method, method.lower()),
                list_or_insert="list" if method == "GET" else "insert",
            )
    return f"{method} {path}"


# REST methods that start a query job (one statement each).
JOB_STARTS = frozenset({"jobs.query", "jobs.insert"})


@dataclass
class CallCounter:
    """Every REST call of the clients it is attached to, by kind, thread-safe."""

    calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, url: str) -> None:
        with self._lock:
            self.calls[call_kind(method, url)] += 1

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    @property
    def rest_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def jobs(self) -> int:
        return sum(n for kind, n in self.calls.items() if kind in JOB_STARTS)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)

    def attach(self, client: bigquery.Client) -> bigquery.Client:
        session = client._http
        original: Callable[..., Any] = session.request

        def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            self.record(method, url)
            return original(method, url, *args, **kwargs)

        session.request = counted
        return client

    def client_factory(self) -> Callable[[Settings], bigquery.Client]:
        """A `Deps.client_factory` whose clients report to this counter."""
        return lambda settings: self.attach(bigquery_client(settings))
