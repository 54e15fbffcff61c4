"""Cold start per deployed function: time to first answer, modules imported, top import costs.

Each measurement starts a fresh `functions-framework --source main.py --target
<function>` process (as a gen2 instance does) and polls one request until it
answers; the clock runs from process start to that answer. Two requests:

- `OPTIONS /` (CORS preflight): needs no warehouse, so it shows the cost of the
  function's own imports (the "function that needs no warehouse" of issue 13).
- one representative 2xx that needs BigQuery (quota GET, tenant status, list
  credentials, an onboarding replay, an ignored Stripe event, list pipeline
  configs, a trigger tick with nothing due): imports, first client and first
  round trips to the emulator.

Each figure is the median of three fresh processes. Import figures come from
`python -X importtime -c "import main; main.<fn>"`.

Two dependency sets: the local venv, and the deployed one. The local venv also
holds bqemulator's dependencies (google-cloud-bigquery-storage, pyarrow,
numpy), which google-cloud-bigquery imports whenever they are installed (about
0.2 s here); requirements.txt, what a deploy installs, has none of them. The
"deployed deps" figures hide those packages with a `sitecustomize` import
blocker, so they show what a deployed instance pays.

Run with `make bench`; nothing here asserts a duration.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import stripe

from local.emulator import free_port
from main import FUNCTION_NAMES
from shared.deps import Deps, use_deps
from shared.platform.bootstrap import bootstrap_central
from shared.platform.secrets import STRIPE_WEBHOOK_SECRET, StaticSecrets
from shared.platform.settings import REPO_ROOT, Settings
from tests.conftest import ADMIN_KEY, TEST_SECRETS
from tests.integration.conftest import Platform, onboarding_payload

FF = str(Path(sys.executable).parent / "functions-framework")
# In the local venv only (bqemulator's dependencies), never in requirements.txt.
NOT_DEPLOYED = ("google.cloud.bigquery_storage", "pyarrow", "numpy", "pandas")
_BLOCKER = f"""
import sys
class _NotDeployed:
    def find_spec(self, name, path=None, target=None):
        if any(name == p or name.startswith(p) for p in {NOT_DEPLOYED!r}):
            raise ImportError(f"{{name}} is not a deployed dependency")
        return None
sys.meta_path.insert(0, _NotDeployed())
"""


def deployed_env(env: dict[str, str], directory: Path) -> dict[str, str]:
    """`env` plus a sitecustomize that refuses the packages a deploy does not install."""
    (directory / "sitecustomize.py").write_text(_BLOCKER)
    return {
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(directory), env.get("PYTHONPATH")])),
    }


ORIGIN = "http://localhost:5173"


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None


@pytest.fixture
def stack(settings: Settings) -> Iterator[tuple[Platform, dict[str, str]]]:
    """A bootstrapped warehouse with one tenant, and the env a function process needs."""
    wired = Deps(settings=settings, secrets=StaticSecrets(TEST_SECRETS))
    use_deps(wired)
    bootstrap_central(wired.warehouse, wired.catalog)
    platform = Platform(wired)
    env = {
        **os.environ,
        "CONVERGENCE_ENV": settings.environment,
        "GCP_PROJECT": settings.gcp_project,
        "CENTRAL_DATASET": settings.central_dataset,
        "BIGQUERY_EMULATOR_HOST": str(settings.bigquery_emulator_host),
        "LOCAL_DATA_DIR": str(settings.local_data_dir),
        "FRONTEND_ORIGINS": ORIGIN,
        "LOG_LEVEL": "WARNING",
        **TEST_SECRETS,
    }
    yield platform, env
    use_deps(None)


def representative(platform: Platform) -> dict[str, Probe]:
    """One cheap warehouse-backed request per built function, answered 2xx."""
    payload = onboarding_payload("cold" + os.urandom(4).hex())
    tenant = platform.onboard(payload).get_json()
    key = {"X-API-Key": tenant["api_key"]}
    admin = {"X-Admin-Key": ADMIN_KEY}
    event = json.dumps(
        {
            "id": "evt_" + os.urandom(8).hex(),
            "object": "event",
            "type": "customer.created",
            "created": int(time.time()),
            "data": {"object": {"id": "cus_x", "object": "customer"}},
        }
    )
    signature = stripe.WebhookSignature.generate_signature_header(
        event, TEST_SECRETS[STRIPE_WEBHOOK_SECRET]
    )
    json_type = {"Content-Type": "application/json"}
    return {
        "quota": Probe("GET", "/", key),
        "admin": Probe("GET", f"/tenants/{tenant['tenant_id']}", admin),
        "credentials": Probe("GET", "/", key),
        "onboard": Probe("POST", "/", {**admin, **json_type}, json.dumps(payload).encode()),
        "stripe_webhook": Probe(
            "POST", "/", {"Stripe-Signature": signature, **json_type}, event.encode()
        ),
        "pipelines": Probe("GET", "/configs", key),
        "trigger": Probe("POST", "/", admin),
    }


SAMPLES = 3


def first_answer(
    function: str, probe: Probe, env: dict[str, str], source: Path = REPO_ROOT / "main.py"
) -> tuple[float, int]:
    """Median over SAMPLES fresh processes of the seconds to `probe`'s first answer, and its status.

    The machine is shared, so one sample can be far off; each sample is a new process.
    """
    samples = [_first_answer_once(function, probe, env, source) for _ in range(SAMPLES)]
    statuses = {status for _, status in samples}
    return statistics.median(seconds for seconds, _ in samples), max(statuses)


def _first_answer_once(
    function: str, probe: Probe, env: dict[str, str], source: Path
) -> tuple[float, int]:
    """Seconds from process start to the first HTTP answer of `probe`, and its status."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [FF, "--source", str(source), "--target", function, "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < 30:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.request(probe.method, probe.path, body=probe.body, headers=probe.headers)
                status = connection.getresponse().status
                return time.perf_counter() - started, status
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                time.sleep(0.005)
            finally:
                connection.close()
        raise TimeoutError(f"{function} did not answer within 30 s")
    finally:
        process.terminate()
        process.wait(timeout=20)


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[:2] == ["google", "cloud"] and len(parts) > 2:
        return ".".join(parts[:3])
    if parts[0] in ("google", "shared") and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def import_profile(function: str, env: dict[str, str]) -> tuple[int, list[tuple[str, float]]]:
    """Modules loaded by `main.<function>` (before any request) and the costliest packages.

    Costs are self times summed per package (google.cloud.X, google.X,
    shared.X, else the top-level name), in ms.
    """
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            f"import sys, main; main.{function}; print(len(sys.modules))",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    costs: dict[str, float] = {}
    for line in result.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            name = _package(match.group(4))
            costs[name] = costs.get(name, 0.0) + int(match.group(1)) / 1000
    top = sorted(costs.items(), key=lambda item: -item[1])[:5]
    return int(result.stdout.strip().splitlines()[-1]), top


def test_bench_cold_start_per_function(
    stack: tuple[Platform, dict[str, str]], tmp_path: Path
) -> None:
    platform, local_env = stack
    probes = representative(platform)
    preflight = Probe("OPTIONS", "/", {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    envs = {"local venv": local_env, "deployed deps": deployed_env(local_env, tmp_path)}
    # The floor: functions-framework serving a one-line function, same machine, same load.
    hello = tmp_path / "hello" / "main.py"
    hello.parent.mkdir()
    hello.write_text(
        "import functions_framework\n\n\n@functions_framework.http\n"
        "def hello(request):\n    return '', 204\n"
    )
    floor = first_answer("hello", preflight, local_env, source=hello)
    print(f"BENCH cold start floor (one-line function): first answer after {floor[0]:.2f} s")
    rows: list[dict[str, Any]] = []
    for function in FUNCTION_NAMES:
        for deps_label, env in envs.items():
            modules, top = import_profile(function, env)
            row: dict[str, Any] = {
                "function": function,
                "deps": deps_label,
                "modules": modules,
                "options": first_answer(function, preflight, env),
            }
            if function in probes:
                row["first_2xx"] = first_answer(function, probes[function], env)
            rows.append(row)
            first = row.get("first_2xx")
            print(
                f"BENCH cold start {function:<15} {deps_label:<13} modules {modules:>5}  "
                f"OPTIONS {row['options'][1]} after {row['options'][0]:5.2f} s  "
                + (f"first {first[1]} after {first[0]:5.2f} s" if first else "(no 2xx probe)")
            )
            print("      top imports (self ms): " + ", ".join(f"{n} {ms:.0f}" for n, ms in top))
    print()
    # The machine is shared: the load says how far these wall-clock figures stretch.
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    print("| function | deps | modules at start | OPTIONS answered (no warehouse) | first 2xx |")
    print("|---|---|---|---|---|")
    print(f"| (one-line function: the floor) | local venv | - | {floor[0]:.2f} s | - |")
    for row in rows:
        first = row.get("first_2xx")
        print(
            f"| {row['function']} | {row['deps']} | {row['modules']} "
            f"| {row['options'][0]:.2f} s | "
            + (f"{first[0]:.2f} s ({first[1]}) |" if first else "- |")
        )
    for row in rows:
        assert row["options"][1] == 204, row
        if "first_2xx" in row:
            assert 200 <= row["first_2xx"][1] < 300, row
