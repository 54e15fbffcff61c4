"""What /healthz promises: 200 only when a request can be served; 503 says why otherwise."""

from __future__ import annotations

from google.api_core import exceptions as gexc
from werkzeug.test import Client

from local.gateway import Health, build_gateway
from shared.platform.bootstrap import names_central_dataset


class Probe:
    """Answers what the warehouse would: missing tables, or an outage."""

    def __init__(self) -> None:
        self.missing: list[str] = []
        self.down = False
        self.calls = 0

    def __call__(self) -> list[str]:
        self.calls += 1
        if self.down:
            raise gexc.ServiceUnavailable("connection refused")
        return list(self.missing)


def _health(health: Health) -> tuple[int, dict[str, object], dict[str, str]]:
    response = Client(build_gateway(health)).get("/healthz")
    return response.status_code, response.get_json(), dict(response.headers)


def test_health_is_starting_until_bootstrap_has_finished() -> None:
    probe = Probe()
    health = Health(probe, ttl_seconds=0)

    status, body, headers = _health(health)
    assert (status, body["status"]) == (503, "starting")
    assert headers["Retry-After"]
    assert probe.calls == 0  # nothing is asked of the warehouse before bootstrap

    health.ready.set()
    status, body, _ = _health(health)
    assert (status, body["status"]) == (200, "ok")


def test_missing_central_tables_and_an_unreachable_warehouse_are_503() -> None:
    probe = Probe()
    health = Health(probe, ttl_seconds=0)
    health.ready.set()

    probe.missing = ["tenant_profiles"]
    status, body, _ = _health(health)
    assert (status, body["status"], body["missing"]) == (
        503,
        "not_bootstrapped",
        ["tenant_profiles"],
    )
    assert "POST /admin/bootstrap" in str(body["detail"])

    probe.missing, probe.down = [], True
    status, body, headers = _health(health)
    assert (status, body["status"]) == (503, "warehouse_unavailable")
    assert headers["Retry-After"]

    probe.down = False
    assert _health(health)[0] == 200


def test_the_probe_answer_is_reused_within_its_ttl() -> None:
    now = [0.0]
    probe = Probe()
    health = Health(probe, ttl_seconds=2, clock=lambda: now[0])
    health.ready.set()

    for _ in range(5):
        _health(health)
    now[0] = 2.5
    _health(health)

    assert probe.calls == 2


def test_bigquerys_not_found_for_the_central_dataset_is_recognised() -> None:
    table = gexc.NotFound(
        "Not found: Table proj:tenants.tenant_profiles was not found in location US"
    )
    dataset = gexc.NotFound("Not found: Dataset proj:tenants was not found in location US")
    other = gexc.NotFound("Not found: Table proj:acme.focus_cost was not found in location US")
    prefix = gexc.NotFound("Not found: Dataset proj:tenants_eu was not found in location US")

    assert names_central_dataset(table, "tenants")
    assert names_central_dataset(dataset, "tenants")
    assert not names_central_dataset(other, "tenants")
    assert not names_central_dataset(prefix, "tenants")
    assert not names_central_dataset(ValueError("tenants."), "tenants")
