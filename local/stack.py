"""`make run`: the emulator, the gateway and bootstrap on one machine, in the foreground."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import signal
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from werkzeug.serving import make_server

from local.emulator import Emulator
from shared.platform.secrets import ADMIN_API_KEY, API_KEY_PEPPER, STRIPE_WEBHOOK_SECRET

log = logging.getLogger("local.stack")


def say(message: str) -> None:
    print(f"[convergence] {message}", file=sys.stderr, flush=True)


def ensure_local_secrets(data_dir: Path) -> dict[str, str]:
    """Platform secrets: env wins; otherwise generated once and kept in the data dir (0600)."""
    path = data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    generators = {
        ADMIN_API_KEY: lambda: "adm_" + secrets.token_urlsafe(32),
        API_KEY_PEPPER: lambda: secrets.token_urlsafe(32),
        STRIPE_WEBHOOK_SECRET: lambda: "whsec_" + secrets.token_urlsafe(24),
    }
    changed = False
    for name, make in generators.items():
        if not stored.get(name):
            stored[name] = make()
            changed = True
    if changed:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stored, indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)
    return {name: os.environ.get(name) or stored[name] for name in generators}


def lock_data_dir(data_dir: Path) -> Any:
    """One stack per data dir: the emulator refuses to share it, so fail early and clearly."""
    handle = open(data_dir / "stack.lock", "w")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another local stack is already running on {data_dir}") from None
    return handle


def post_json(url: str, headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=120) as response:
        return dict(json.loads(response.read()))


def write_endpoints(data_dir: Path, endpoints: dict[str, Any]) -> None:
    """`<data dir>/endpoints.json`, atomically: readers never see half a file."""
    tmp = data_dir / "endpoints.json.tmp"
    tmp.write_text(json.dumps(endpoints, indent=2))
    tmp.replace(data_dir / "endpoints.json")


def write_runner_environment(data_dir: Path) -> None:
    """`<data dir>/runner_env.json` (0600): the environment the dispatcher gives runners, so a
    drill can deliver a task itself exactly as the dispatcher would (it holds secrets, like
    secrets.json beside it)."""
    tmp = data_dir / "runner_env.json.tmp"
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    from local.dispatcher import runner_environment

    tmp.write_text(json.dumps(runner_environment(), indent=2))
    tmp.replace(data_dir / "runner_env.json")


def start_scheduling(
    data_dir: Path, gateway_url: str, admin_key: str, stop: threading.Event
) -> None:
    """The local Cloud Tasks + Cloud Run jobs (dispatcher) and Cloud Scheduler (ticker)."""
    from local.dispatcher import Dispatcher, Ticker
    from shared.platform.settings import get_settings
    from shared.scheduling.dispatch import LocalTaskQueue

    settings = get_settings()
    queue = LocalTaskQueue(data_dir / "tasks.sqlite")
    Dispatcher(queue, settings.local_runner_concurrency, data_dir / "runs", stop).start()
    Ticker(f"{gateway_url}/trigger/", admin_key, settings.scheduler_tick_seconds, stop).start()
    say(
        f"scheduler  ticks every {settings.scheduler_tick_seconds:g} s; runners: "
        f"{settings.local_runner_concurrency} at once (logs in {data_dir / 'runs'})"
    )


class LocalServer(Protocol):
    """A stand-in the stack runs beside the gateway: started first, stopped last."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def environment(self) -> dict[str, str]:
        """The settings (env vars) that point the platform at this server."""
        ...

    def endpoints(self) -> dict[str, object]:
        """What `endpoints.json` tells about it."""
        ...


def local_servers(data_dir: Path, emulator: Emulator) -> list[LocalServer]:
    """Every stand-in of the local stack, in start order (the emulator first)."""
    from local.cloud_access import CloudStandIns
    from local.zetasql import ZetaSqlServer

    servers: list[LocalServer] = [emulator, CloudStandIns(data_dir / "clouds")]
    from local.genai_apis import GenAiStandIns

    servers.append(GenAiStandIns())
    # GoogleSQL's analyzer checks tenant SQL at upload (an outer one may be given).
    if not os.environ.get("SQL_ANALYZER_ADDRESS"):
        servers.append(ZetaSqlServer(data_dir / "zetasql.log"))
    from local.smtp_sink import SmtpSink

    # Alert emails land in <data dir>/mail/*.eml (SMTP_SINK_PORT: 0 = any free port).
    servers.append(SmtpSink(data_dir / "mail", int(os.environ.get("SMTP_SINK_PORT", "0"))))
    return servers


def start_servers(servers: list[LocalServer]) -> bool:
    """Starts each in order; False (after stopping those started, and saying why) if one fails."""
    started: list[LocalServer] = []
    for server in servers:
        say(f"starting {server.name}")
        try:
            server.start()
        except RuntimeError as exc:
            say(f"cannot start {server.name}: {exc}")
            stop_servers(started)
            return False
        started.append(server)
    return True


def stop_servers(servers: list[LocalServer]) -> None:
    for server in reversed(servers):
        server.stop()


def main() -> int:
    data_dir = Path(os.environ.get("LOCAL_DATA_DIR", ".local")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_data_dir(data_dir)
    port = int(os.environ.get("PORT", "8080"))
    project = os.environ.get("GCP_PROJECT", "convergence-local")
    emulator = Emulator(
        data_dir / "bigquery",
        project,
        rest_port=int(os.environ.get("BQ_EMULATOR_PORT", "9050")),
        grpc_port=int(os.environ.get("BQ_EMULATOR_GRPC_PORT", "9060")),
        log_path=data_dir / "emulator.log",
    )

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    platform_secrets = ensure_local_secrets(data_dir)
    servers = local_servers(data_dir, emulator)
    if not start_servers(servers):
        return 1
    server = None
    try:
        os.environ.update(
            {
                "LOCAL_DATA_DIR": str(data_dir),
                "GCP_PROJECT": project,
                **{k: v for local in servers for k, v in local.environment().items()},
                **platform_secrets,
            }
        )
        # A request in a warehouse outage answers 503 + Retry-After within 5 s, not after the
        # client's 600 s of retries; runners don't get this (local/dispatcher.py).
        os.environ.setdefault("BQ_UNREACHABLE_SECONDS", "5")
        from local.gateway import (  # after env is set: settings read it
            Health,
            JsonRequestHandler,
            build_gateway,
        )

        # /healthz answers 503 "starting" until bootstrap has finished below.
        health = Health()

        try:
            server = make_server(
                "127.0.0.1",
                port,
                build_gateway(health),
                threaded=True,
                request_handler=JsonRequestHandler,
            )
        except OSError as exc:
            say(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); set PORT to another port")
            return 1
        threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
        gateway_url = f"http://127.0.0.1:{server.server_port}"

        try:
            report = post_json(
                f"{gateway_url}/admin/bootstrap",
                {"X-Admin-Key": platform_secrets[ADMIN_API_KEY]},
            )
        except urllib.error.HTTPError as exc:
            say(f"bootstrap failed: HTTP {exc.code} {exc.read().decode(errors='replace')}")
            return 1
        endpoints = {
            "gateway_url": gateway_url,
            "project": project,
            "central_dataset": report.get("dataset"),
            "pid": os.getpid(),
            **{k: v for local in servers for k, v in local.endpoints().items()},
        }
        say(f"bootstrap: created {report.get('created')}, existing {len(report['existing'])}")
        health.ready.set()
        start_scheduling(data_dir, gateway_url, platform_secrets[ADMIN_API_KEY], stop)
        say(f"gateway    {gateway_url}  (functions at /<name>/, health at /healthz)")
        say(f"emulator   {emulator.url}  project={project}")
        say(f"admin key  {platform_secrets[ADMIN_API_KEY]}")
        say(f"endpoints  {data_dir / 'endpoints.json'}")
        write_runner_environment(data_dir)
        # Written last: whoever waits for this file finds everything above printed.
        write_endpoints(data_dir, endpoints)
        say("ready; Ctrl-C stops everything")
        stop.wait()
        say("stopping")
    finally:
        if server is not None:
            server.shutdown()
        stop_servers(servers)
        (data_dir / "endpoints.json").unlink(missing_ok=True)
        lock.close()
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
