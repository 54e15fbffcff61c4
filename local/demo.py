"""`make demo`: Google Cloud, Azure, AWS and GenAI costs become one FOCUS table, over HTTP.

Uses the running local stack (`.local/endpoints.json`, or LOCAL_DATA_DIR) when
its gateway answers, otherwise starts one on free ports in a throwaway data dir
and stops it at the end. Then, like a customer and the platform would:

1. seeds a deterministic GCP billing export into the emulator
   (`local.billing_export`, the demo data generator);
2. onboards a tenant (admin key), adds a WORKLOAD_IDENTITY credential and a GCP
   provider config naming the export table;
3. schedules `gcp_cost_billing` daily at the next whole minute, waits for it
   to come due and ticks the trigger (`POST /trigger/`, as Cloud Scheduler would);
4. waits for the run and prints its steps and its data-quality results;
5. adds the tenant's GenAI spend (issue 19): an ADMIN_KEY credential and a
   provider config for OpenAI and for Anthropic, against the stack's admin API
   stand-ins (`local.genai_apis`: an organization's spend is a pure function of
   its admin key and the day, so a key made for this tenant seeds its org), and
   runs `openai_costs` and `anthropic_costs` for the same day on demand
   (`POST /pipelines/runs`);
6. Azure (`local.azure_export.demo_run`): seeds a FocusCost 1.0r2 export into the
   stack's Azurite, adds a SAS_TOKEN credential, an AZURE provider config and an
   `azure_cost_export` pipeline, and runs it once over the export's dates
   (`date_from`/`date_to`);
7. AWS (`local.aws_export.demo_run`): seeds a CUR 2.0 export (the last few days
   of the current billing period) into the stack's moto S3, creates the
   customer's IAM role trusting the platform's identity
   (`GET /credentials/platform-identity`), adds an IAM_ROLE credential, an AWS
   provider config and an `aws_cost_export` pipeline, and runs it once over
   those days;
8. prints the cost table by provider, service and day from `focus_cost`: AWS,
   Azure, Google Cloud, OpenAI and Anthropic rows in one table.

Exit code 0 only if every run SUCCEEDED and FOCUS rows exist for every
provider: a failed run is shown with its step errors, never reported as success.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import aws_export, azure_export
from local.emulator import free_port
from shared.platform.settings import REPO_ROOT

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
DEMO_DAYS = 3
ROWS_PER_DAY = 400


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


@dataclass
class Stack:
    gateway: str
    emulator: str
    project: str
    admin_key: str
    process: subprocess.Popen[bytes] | None = None
    data_dir: Path | None = None

    def stop(self) -> None:
        """Stops the stack only if this demo started it."""
        if self.process is None:
            return
        say("stopping the stack the demo started")
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def http(
    method: str, url: str, payload: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    body = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return err.code, raw.decode(errors="replace")


def expect(status: int, body: Any, wanted: int, what: str) -> Any:
    if status != wanted:
        raise SystemExit(f"[demo] {what} failed: HTTP {status} {body}")
    return body


def _healthy(gateway: str) -> bool:
    try:
        with urllib.request.urlopen(f"{gateway}/healthz", timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def running_stack() -> Stack | None:
    data_dir = Path(os.environ.get("LOCAL_DATA_DIR", REPO_ROOT / ".local"))
    endpoints_path = data_dir / "endpoints.json"
    if not endpoints_path.exists():
        return None
    endpoints = json.loads(endpoints_path.read_text() or "{}")
    if not endpoints.get("gateway_url") or not _healthy(endpoints["gateway_url"]):
        return None
    admin_key = os.environ.get("ADMIN_API_KEY")
    secrets_path = data_dir / "secrets.json"
    if not admin_key and secrets_path.exists():
        admin_key = json.loads(secrets_path.read_text()).get("ADMIN_API_KEY")
    if not admin_key:
        return None
    say(f"using the running stack at {endpoints['gateway_url']}")
    return Stack(
        endpoints["gateway_url"], endpoints["emulator_url"], endpoints["project"], admin_key
    )


def start_stack(timeout: float = 90) -> Stack:
    data_dir = Path(tempfile.mkdtemp(prefix="convergence-demo-"))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "ADMIN_API_KEY"},
        "LOCAL_DATA_DIR": str(data_dir),
        "PORT": str(port),
        "BQ_EMULATOR_PORT": str(free_port()),
        "BQ_EMULATOR_GRPC_PORT": str(free_port()),
    }
    log = open(data_dir / "stack.log", "wb")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log
    )
    log.close()
    say(f"starting a local stack on port {port} (data in {data_dir})")
    deadline = time.monotonic() + timeout
    endpoints_path = data_dir / "endpoints.json"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise SystemExit("[demo] the stack exited early; run `make run` to see why")
        if endpoints_path.exists():
            endpoints = json.loads(endpoints_path.read_text() or "{}")
            if endpoints.get("pid") == process.pid:
                secrets = json.loads((data_dir / "secrets.json").read_text())
                return Stack(
                    endpoints["gateway_url"],
                    endpoints["emulator_url"],
                    endpoints["project"],
                    secrets["ADMIN_API_KEY"],
                    process,
                    data_dir,
                )
        time.sleep(0.3)
    stack = Stack("", "", "", "", process, data_dir)
    stack.stop()
    raise SystemExit(f"[demo] the stack was not ready in {timeout:.0f}s")


def bigquery_client(stack: Stack) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=stack.project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=stack.emulator),
    )


def generator_module() -> Any:
    """The demo data generator (another module's); checked before any stack starts."""
    try:
        from local import billing_export
    except ImportError as exc:
        raise SystemExit(
            f"[demo] the demo data generator local/billing_export.py is missing ({exc}); "
            "it lands with the FOCUS conversion work"
        ) from None
    return billing_export


def seed_export(stack: Stack, table_id: str, first_day: dt.date) -> int:
    billing_export = generator_module()
    generator = billing_export.ExportGenerator(seed=11)
    rows = generator.rows(first_day, DEMO_DAYS, ROWS_PER_DAY)
    return int(billing_export.seed_export(bigquery_client(stack), table_id, rows))


def demo(stack: Stack) -> int:
    started = time.monotonic()
    admin = {"X-Admin-Key": stack.admin_key}
    suffix = uuid.uuid4().hex[:6]
    tenant_id = f"demo_{suffix}"
    today = dt.datetime.now(dt.UTC).date()
    # A scheduled run processes the day before its schedule day (UTC here);
    # seed the days around it.
    run_date = today - dt.timedelta(days=1)
    export_dataset, export_table = "billing_export", f"gcp_billing_export_v1_demo_{suffix}"
    table_id = f"{stack.project}.{export_dataset}.{export_table}"
    seeded = seed_export(stack, table_id, run_date - dt.timedelta(days=DEMO_DAYS - 2))
    say(f"seeded {seeded} export rows into {table_id}")

    status, tenant = http(
        "POST",
        f"{stack.gateway}/onboard/",
        {
            "tenant_id": tenant_id,
            "company_name": "Demo Corp",
            "admin_email": "finops@demo.example",
            "subscription_plan": "PROFESSIONAL",
        },
        admin,
    )
    expect(status, tenant, 201, "onboarding")
    key = {"X-API-Key": tenant["api_key"]}
    say(f"onboarded tenant {tenant_id} (dataset {tenant['dataset_id']})")

    status, credential = http(
        "POST",
        f"{stack.gateway}/credentials/",
        {
            "provider": "GCP",
            "credential_type": "WORKLOAD_IDENTITY",
            "credential_name": "billing export reader",
            "metadata": {"granted_to": "platform service account"},
        },
        key,
    )
    expect(status, credential, 201, "adding the credential")
    status, provider = http(
        "POST",
        f"{stack.gateway}/credentials/provider-configs",
        {
            "provider": "GCP",
            "source_project_id": stack.project,
            "billing_export_dataset": export_dataset,
            "billing_export_table": export_table,
            "currency": "USD",
            "credential_id": credential["credential_id"],
        },
        key,
    )
    expect(status, provider, 201, "adding the provider config")
    say(f"credential {credential['credential_id']}, provider config {provider['config_id']}")

    # A daily schedule whose time is the next whole minute (schedules may not
    # fire more often than every 5 minutes), so the demo waits under a minute.
    fire = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=75)).replace(second=0, microsecond=0)
    status, config = http(
        "POST",
        f"{stack.gateway}/pipelines/configs",
        {
            "name": "daily GCP costs",
            "pipeline": "gcp_cost_billing",
            "provider_config_id": provider["config_id"],
            "credential_id": credential["credential_id"],
            "schedule_cron": f"{fire.minute} {fire.hour} * * *",
            "timezone": "UTC",
            "is_active": True,
            "parameters": {},
        },
        key,
    )
    expect(status, config, 201, "scheduling gcp_cost_billing")
    due = dt.datetime.fromisoformat(config["next_run_time"]["utc"])
    wait = max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds()) + 1
    say(f"scheduled {config['config_id']}; due at {due:%H:%M:%S} UTC, ticking in {wait:.0f}s")
    time.sleep(wait)
    status, report = http("POST", f"{stack.gateway}/trigger/", {}, admin)
    expect(status, report, 200, "ticking the trigger")
    say(f"trigger tick: {report}")

    run = wait_for_run(stack, key, config["config_id"])
    show_run(run)
    if run["state"] != "SUCCEEDED":
        say(f"the run {run['state']}: {run.get('error_code')} {run.get('error_message') or ''}")
        return 1
    for provider, admin_key in genai_admin_keys(tenant_id).items():
        genai_run = run_genai(
            stack, key, provider, admin_key, dt.date.fromisoformat(run["run_date"])
        )
        show_run(genai_run)
        if genai_run["state"] != "SUCCEEDED":
            say(f"the {provider} run {genai_run['state']}: {genai_run.get('error_code')}")
            return 1
    azure_export.demo_run(stack, key)
    aws_export.demo_run(stack, key)
    rows = summary(stack, tenant["dataset_id"])
    providers = {"Google Cloud", "Microsoft", "AWS", "OpenAI", "Anthropic"}
    missing = providers - {r["provider"] for r in rows}
    if missing:
        say(f"the runs succeeded but focus_cost has no rows for {sorted(missing)}")
        return 1
    say(f"done in {time.monotonic() - started:.0f}s")
    return 0


def genai_admin_keys(tenant_id: str) -> dict[str, str]:
    """Organization admin keys of the stand-ins' key format, one org per tenant and provider."""
    return {
        "OPENAI": f"sk-admin-demo-{tenant_id}-org-key",
        "ANTHROPIC": f"sk-ant-admin01-demo-{tenant_id}-org-key",
    }


def run_genai(
    stack: Stack, key: dict[str, str], provider: str, admin_key: str, run_date: dt.date
) -> Any:
    """Credential, provider config and pipeline config for one GenAI provider; one run."""
    name = provider.lower()
    status, credential = http(
        "POST",
        f"{stack.gateway}/credentials/",
        {
            "provider": provider,
            "credential_type": "ADMIN_KEY",
            "credential_name": f"{name} cost reader",
            "credentials": {"admin_key": admin_key},
        },
        key,
    )
    expect(status, credential, 201, f"adding the {name} admin key")
    status, provider_config = http(
        "POST",
        f"{stack.gateway}/credentials/provider-configs",
        {"provider": provider, "currency": "USD", "credential_id": credential["credential_id"]},
        key,
    )
    expect(status, provider_config, 201, f"adding the {name} provider config")
    status, config = http(
        "POST",
        f"{stack.gateway}/pipelines/configs",
        {
            "name": f"daily {name} costs",
            "pipeline": f"{name}_costs",
            "provider_config_id": provider_config["config_id"],
            "credential_id": credential["credential_id"],
            "schedule_cron": "0 6 * * *",
            "timezone": "UTC",
            "is_active": False,  # the demo runs it on demand, now
            "parameters": {},
        },
        key,
    )
    expect(status, config, 201, f"creating the {name}_costs pipeline")
    status, started = http(
        "POST",
        f"{stack.gateway}/pipelines/runs",
        {"config_id": config["config_id"], "run_date": run_date.isoformat()},
        key,
    )
    expect(status, started, 202, f"starting {name}_costs")
    say(
        f"{name}: credential {credential['credential_id']} ({credential['validation_status']}), "
        f"provider config {provider_config['config_id']}, run started"
    )
    return wait_for_run(stack, key, config["config_id"])


def wait_for_run(stack: Stack, key: dict[str, str], config_id: str, timeout: float = 600) -> Any:
    deadline = time.monotonic() + timeout
    run_id = None
    while time.monotonic() < deadline:
        if run_id is None:
            status, page = http("GET", f"{stack.gateway}/pipelines/runs", headers=key)
            mine = [r for r in (page or {}).get("runs", []) if r.get("config_id") == config_id]
            run_id = mine[0]["run_id"] if status == 200 and mine else None
        if run_id is not None:
            status, run = http("GET", f"{stack.gateway}/pipelines/runs/{run_id}", headers=key)
            if status == 200 and run["state"] in TERMINAL:
                return run
        time.sleep(1)
    raise SystemExit(f"[demo] no finished run for {config_id} within {timeout:.0f}s")


def show_run(run: dict[str, Any]) -> None:
    say(f"run {run['run_id']} for {run.get('run_date')}: {run['state']}")
    for step in run.get("steps", []):
        error = f" [{step.get('error_code')}]" if step.get("error_code") else ""
        say(
            f"  step {step['step_name']:<10} {step['status']:<10} rows={step.get('rows_processed')}"
            f"{error} {step.get('message') or ''}"
        )
    for result in run.get("dq_results", []):
        say(
            f"  dq   {result['check_name']:<44} {result['status']:<5} "
            f"expected={result.get('expected')} actual={result.get('actual')}"
        )


def summary(stack: Stack, dataset_id: str) -> list[dict[str, Any]]:
    client = bigquery_client(stack)
    table = f"`{stack.project}.{dataset_id}.focus_cost`"
    rows = [
        dict(r.items())
        for r in client.query(
            "SELECT ProviderName AS provider, ServiceName AS service, "
            "DATE(ChargePeriodStart) AS day, "
            "CAST(SUM(BilledCost) AS STRING) AS billed, ANY_VALUE(BillingCurrency) AS currency, "
            f"COUNT(*) AS n FROM {table} GROUP BY provider, service, day "
            "ORDER BY day, provider, service"
        ).result()
    ]
    print()
    print(f"{'day':<12}{'provider':<14}{'service':<32}{'billed cost':>18} {'ccy':<4}{'rows':>6}")
    for row in rows:
        print(
            f"{row['day']!s:<12}{(row['provider'] or '-')[:13]:<14}"
            f"{(row['service'] or '-')[:31]:<32}{row['billed']:>18} "
            f"{row['currency'] or '':<4}{row['n']:>6}"
        )
    print()
    return rows


def main() -> int:
    generator_module()
    stack = running_stack() or start_stack()
    try:
        return demo(stack)
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
