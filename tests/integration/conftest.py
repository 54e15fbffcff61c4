"""Integration fixtures: a bootstrapped central dataset and the real function apps."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from shared.deps import Deps, use_deps
from shared.platform.bootstrap import bootstrap_central
from shared.platform.settings import REPO_ROOT, Settings
from tests.conftest import ADMIN_KEY

MAIN = str(REPO_ROOT / "main.py")


def new_tenant_id() -> str:
    return "t" + uuid.uuid4().hex[:12]


def emulator_deps(platform: Platform, client_class: type[bigquery.Client], **changes: Any) -> Deps:
    """The platform's Deps whose BigQuery clients are `client_class` (a subclass that
    records or injects faults) on the emulator; `changes` replace other fields."""

    def factory(settings: Settings) -> bigquery.Client:
        return client_class(
            project=settings.gcp_project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=settings.bigquery_emulator_host),
        )

    return Deps(
        settings=platform.deps.settings,
        secrets=platform.deps.secrets,
        client_factory=factory,
        **{"_crypto": platform.deps.crypto, **changes},
    )


def onboarding_payload(tenant_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "company_name": "Acme Corp",
        "admin_email": "finops@acme.example",
        "subscription_plan": "PROFESSIONAL",
        **changes,
    }


@dataclass
class Platform:
    """The functions as functions-framework builds them, on a bootstrapped warehouse."""

    deps: Deps
    clients: dict[str, FlaskClient] = field(default_factory=dict)

    def client(self, name: str) -> FlaskClient:
        if name not in self.clients:
            self.clients[name] = functions_framework.create_app(
                target=name, source=MAIN
            ).test_client()
        return self.clients[name]

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"X-Admin-Key": ADMIN_KEY, **kwargs.pop("headers", {})}
        return self.client("admin").open(path, method=method, headers=headers, **kwargs)

    def onboard(self, payload: dict[str, Any], **headers: str) -> Any:
        return self.client("onboard").post(
            "/", json=payload, headers={"X-Admin-Key": ADMIN_KEY, **headers}
        )

    def onboarded(self, tenant_id: str | None = None, **changes: Any) -> dict[str, Any]:
        """A freshly onboarded tenant's response body (with its API key)."""
        response = self.onboard(onboarding_payload(tenant_id or new_tenant_id(), **changes))
        assert response.status_code == 201, response.get_json()
        return dict(response.get_json())

    def travel_to(self, when: dt.datetime) -> None:
        """From now on the functions see `when` as the current time."""
        use_deps(
            Deps(
                settings=self.deps.settings,
                secrets=self.deps.secrets,
                clock=lambda: when,
                _crypto=self.deps.crypto,
            )
        )

    def dataset_exists(self, dataset_id: str) -> bool:
        try:
            self.deps.warehouse.client.get_dataset(f"{self.deps.settings.gcp_project}.{dataset_id}")
        except gexc.NotFound:
            return False
        return True

    def tenant_call(self, name: str, method: str, path: str, key: str, **kwargs: Any) -> Any:
        headers = {"X-API-Key": key, **kwargs.pop("headers", {})}
        return self.client(name).open(path, method=method, headers=headers, **kwargs)


@pytest.fixture
def platform(deps: Deps) -> Iterator[Platform]:
    bootstrap_central(deps.warehouse, deps.catalog)
    yield Platform(deps)
    client = deps.warehouse.client
    for dataset in client.list_datasets():
        labels = client.get_dataset(dataset.reference).labels or {}
        if labels.get("convergence_tenant") and dataset.dataset_id.startswith("t"):
            client.delete_dataset(dataset.reference, delete_contents=True, not_found_ok=True)
