"""Local stand-ins for the OpenAI and Anthropic admin cost and usage APIs (published contracts).

Contracts followed (each field below is named as on these pages):
- OpenAI costs: https://platform.openai.com/docs/api-reference/usage/costs
  `GET /v1/organization/costs`: `start_time` (Unix s, required), `end_time`,
  `bucket_width` ("1d" only), `group_by` (project_id, line_item), `limit`
  (1-180, default 7 buckets), `page` (the previous `next_page`). Answer:
  `{"object": "page", "data": [{"object": "bucket", "start_time", "end_time",
  "results": [{"object": "organization.costs.result", "amount": {"value",
  "currency": "usd"}, "line_item", "project_id"}]}], "has_more", "next_page"}`.
- OpenAI completions usage: https://platform.openai.com/docs/api-reference/usage/completions
  `GET /v1/organization/usage/completions`: results
  `organization.usage.completions.result` with `input_tokens`,
  `output_tokens`, `input_cached_tokens`, `num_model_requests`, `project_id`,
  `model` (when grouped by them); paged the same way (`limit` default 7 for 1d).
- OpenAI other usage endpoints, paged and grouped the same way, each result
  `organization.usage.<endpoint>.result` with `num_model_requests`,
  `project_id`, `model`, `user_id`, `api_key_id` and its quantity:
  https://platform.openai.com/docs/api-reference/usage/embeddings
  (`/usage/embeddings`, `input_tokens`),
  https://platform.openai.com/docs/api-reference/usage/moderations
  (`/usage/moderations`, `input_tokens`),
  https://platform.openai.com/docs/api-reference/usage/images
  (`/usage/images`, `images`; also `source`, `size`),
  https://platform.openai.com/docs/api-reference/usage/audio_speeches
  (`/usage/audio_speeches`, `characters`),
  https://platform.openai.com/docs/api-reference/usage/audio_transcriptions
  (`/usage/audio_transcriptions`, `seconds`). Usage endpoints take `limit`
  1-31 for 1d buckets (the costs endpoint 1-180).
- OpenAI errors: https://platform.openai.com/docs/guides/error-codes
  `{"error": {"message", "type", "param", "code"}}`; 401 invalid or revoked
  key, 403 a key without the permission (ordinary, non-admin keys), 429 with
  `retry-after`.
- Anthropic cost report: https://platform.claude.com/docs/en/api/admin/cost_report
  `GET /v1/organizations/cost_report`: `starting_at`/`ending_at` (RFC 3339),
  `bucket_width` "1d", `group_by[]` (workspace_id, description), `limit`
  (1-31, default 7), `page`. Results: `currency` ("USD"), `amount` (a decimal
  string in cents: "123.45" is $1.2345), `workspace_id`, `description`,
  `cost_type` (tokens, web_search, code_execution), `model`, `token_type`,
  `context_window`, `service_tier` (null unless grouped by description).
- Anthropic messages usage: https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages
  `GET /v1/organizations/usage_report/messages`: `group_by[]` (api_key_id,
  workspace_id, model, service_tier, context_window), results with
  `uncached_input_tokens`, `cache_creation.ephemeral_5m_input_tokens`,
  `cache_creation.ephemeral_1h_input_tokens`, `cache_read_input_tokens`,
  `output_tokens`, `server_tool_use.web_search_requests`.
- Anthropic errors: https://docs.anthropic.com/en/api/errors
  `{"type": "error", "error": {"type", "message"}}`: 401
  authentication_error, 403 permission_error, 429 rate_limit_error with
  `retry-after`. Admin keys are `sk-ant-admin01-...`, sent as `x-api-key`
  with `anthropic-version` (https://docs.anthropic.com/en/api/administration-api).

Keys: an OpenAI admin key starts `sk-admin-`, an Anthropic one `sk-ant-admin01-`;
a key whose rest starts with `revoked` answers 401 (revoked), any other
well-formed key of the provider (an ordinary API key) 403. Data is a pure
function of the key and the day (a hash), so every process sees the same spend.

Fault injection (tests only, `POST /_local/faults` with a JSON list): each
fault names `key`, `path`, `kind` (`status`, `repeat_cursor`,
`malformed_amount`), `on_request` (the Nth matching request, 1-based),
optionally `status`, `retry_after`, `times`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
from decimal import Decimal
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local.emulator import free_port

DAY = dt.timedelta(days=1)
OPENAI_ADMIN_PREFIX = "sk-admin-"
ANTHROPIC_ADMIN_PREFIX = "sk-ant-admin01-"
ANTHROPIC_VERSION = "2023-06-01"

# Prices per 1M tokens (USD), illustrative and fixed: the stand-in's bills are deterministic.
OPENAI_MODELS = {
    "gpt-4o-2024-08-06": {"input": "2.50", "cached input": "1.25", "output": "10.00"},
    "gpt-4o-mini-2024-07-18": {"input": "0.15", "cached input": "0.075", "output": "0.60"},
}
# Usage endpoints other than completions: endpoint -> (model, quantity field, the
# cost line item's type after "<model>, ", USD per unit as priced; None = free:
# moderations are not billed, so they have usage but no cost line item).
OPENAI_OTHER_USAGE: dict[str, tuple[str, str, str | None, str | None]] = {
    "embeddings": ("text-embedding-3-small", "input_tokens", "input", "0.00000002"),
    "moderations": ("omni-moderation-latest", "input_tokens", None, None),
    "images": ("dall-e-3", "images", "images", "0.04"),
    "audio_speeches": ("tts-1", "characters", "characters", "0.000015"),
    "audio_transcriptions": ("whisper-1", "seconds", "seconds", "0.0001"),
}
# Scales the hash's [0, 2M) into a plausible daily quantity per unit.
_OTHER_SCALE = {"input_tokens": 1, "images": 10_000, "characters": 1, "seconds": 100}
OPENAI_PROJECTS = {"proj_research": "Research", "proj_support": "Support bot"}
ANTHROPIC_MODELS = {
    "claude-sonnet-4-20250514": {
        "uncached_input_tokens": "3.00",
        "output_tokens": "15.00",
        "cache_read_input_tokens": "0.30",
        "cache_creation.ephemeral_5m_input_tokens": "3.75",
    },
    "claude-3-5-haiku-20241022": {
        "uncached_input_tokens": "0.80",
        "output_tokens": "4.00",
        "cache_read_input_tokens": "0.08",
        "cache_creation.ephemeral_5m_input_tokens": "1.00",
    },
}
# null is the default workspace, as the cost report returns it.
ANTHROPIC_WORKSPACES: tuple[str | None, ...] = ("wrkspc_01Analytics", None)
_ANTHROPIC_TOKEN_LABELS = {
    "uncached_input_tokens": "Input",
    "output_tokens": "Output",
    "cache_read_input_tokens": "Cache read",
    "cache_creation.ephemeral_5m_input_tokens": "Cache write (5m)",
}


def _units(*parts: object) -> int:
    """A deterministic token count in [0, 2_000_000) for these parts."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2_000_000


def _day_start(value: dt.datetime) -> dt.datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


# ------------------------------------------------------------------ data


def openai_usage(key: str, day: dt.date) -> list[dict[str, Any]]:
    """Completions usage of one day, per project and model."""
    rows = []
    for project in OPENAI_PROJECTS:
        for model in OPENAI_MODELS:
            cached = _units(key, day, project, model, "cached") // 4
            rows.append(
                {
                    "project_id": project,
                    "model": model,
                    "input_tokens": _units(key, day, project, model, "input") + cached,
                    "input_cached_tokens": cached,
                    "output_tokens": _units(key, day, project, model, "output") // 3,
                    "num_model_requests": _units(key, day, project, model, "req") // 1000 + 1,
                }
            )
    return rows


def openai_other_usage(key: str, day: dt.date, endpoint: str) -> list[dict[str, Any]]:
    """One non-completions usage endpoint's usage of one day, per project and model."""
    model, field, _, _ = OPENAI_OTHER_USAGE[endpoint]
    return [
        {
            "project_id": project,
            "model": model,
            field: _units(key, day, project, model, endpoint) // _OTHER_SCALE[field],
            "num_model_requests": _units(key, day, project, model, endpoint, "req") // 1000 + 1,
        }
        for project in OPENAI_PROJECTS
    ]


def openai_costs(key: str, day: dt.date) -> list[dict[str, Any]]:
    """Cost line items of one day, per project: `<model>, <token type>` priced per 1M tokens,
    then the other endpoints' `<model>, <unit>` priced per unit."""
    rows = []
    for usage in openai_usage(key, day):
        prices = OPENAI_MODELS[usage["model"]]
        tokens = {
            "input": usage["input_tokens"] - usage["input_cached_tokens"],
            "cached input": usage["input_cached_tokens"],
            "output": usage["output_tokens"],
        }
        for token_type, count in tokens.items():
            amount = Decimal(count) * Decimal(prices[token_type]) / Decimal(1_000_000)
            rows.append(
                {
                    "project_id": usage["project_id"],
                    "line_item": f"{usage['model']}, {token_type}",
                    "value": amount,
                }
            )
    for endpoint, (_, field, item_type, price) in OPENAI_OTHER_USAGE.items():
        if price is None:
            continue
        for usage in openai_other_usage(key, day, endpoint):
            rows.append(
                {
                    "project_id": usage["project_id"],
                    "line_item": f"{usage['model']}, {item_type}",
                    "value": Decimal(usage[field]) * Decimal(price),
                }
            )
    return rows


def anthropic_usage(key: str, day: dt.date) -> list[dict[str, Any]]:
    """Messages usage of one day, per workspace and model."""
    rows = []
    for workspace in ANTHROPIC_WORKSPACES:
        for model in ANTHROPIC_MODELS:
            rows.append(
                {
                    "workspace_id": workspace,
                    "model": model,
                    "uncached_input_tokens": _units(key, day, workspace, model, "in"),
                    "cache_read_input_tokens": _units(key, day, workspace, model, "read") // 2,
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": _units(key, day, workspace, model, "w") // 5,
                        "ephemeral_1h_input_tokens": 0,
                    },
                    "output_tokens": _units(key, day, workspace, model, "out") // 4,
                    "server_tool_use": {"web_search_requests": 0},
                }
            )
    return rows


def _token_count(usage: dict[str, Any], token_type: str) -> int:
    if token_type.startswith("cache_creation."):
        return int(usage["cache_creation"][token_type.split(".", 1)[1]])
    return int(usage[token_type])


def anthropic_costs(key: str, day: dt.date) -> list[dict[str, Any]]:
    """Cost items of one day (amount in cents as Decimal), per workspace and description."""
    rows = []
    for usage in anthropic_usage(key, day):
        for token_type, price in ANTHROPIC_MODELS[usage["model"]].items():
            count = _token_count(usage, token_type)
            # cents = tokens * USD per 1M * 100 / 1M
            cents = Decimal(count) * Decimal(price) / Decimal(10_000)
            rows.append(
                {
                    "workspace_id": usage["workspace_id"],
                    "model": usage["model"],
                    "token_type": token_type,
                    "cents": cents,
                }
            )
        rows.append(
            {
                "workspace_id": usage["workspace_id"],
                "model": None,
                "token_type": None,
                "cost_type": "web_search",
                # $10 per 1,000 searches: 1 cent each.
                "cents": Decimal(_units(key, day, usage["workspace_id"], usage["model"], "ws") % 7),
            }
        )
    return rows


# ------------------------------------------------------------------ the server


class Faults:
    """Injected failures, per key and path; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[dict[str, Any]] = []
        self.counts: dict[tuple[str, str], int] = {}

    def set(self, faults: list[dict[str, Any]]) -> None:
        with self.lock:
            self.faults = [dict(f, times=int(f.get("times", 1))) for f in faults]
            self.counts = {}

    def hit(self, key: str, path: str) -> dict[str, Any] | None:
        """The fault this request triggers, if any (counts the request)."""
        with self.lock:
            n = self.counts.get((key, path), 0) + 1
            self.counts[(key, path)] = n
            for fault in self.faults:
                if fault["key"] != key or fault["path"] != path or fault["times"] <= 0:
                    continue
                if n >= int(fault.get("on_request", 1)):
                    fault["times"] -= 1
                    return fault
        return None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f") if value != 0 else "0.0"


def _encode_cursor(index: int) -> str:
    return "page_" + base64.urlsafe_b64encode(str(index).encode()).decode().rstrip("=")


def _decode_cursor(page: str) -> int | None:
    if not page.startswith("page_"):
        return None
    raw = page[5:]
    try:
        return int(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except ValueError:
        return None


class GenAiApis:
    """One WSGI app serving both providers' admin APIs (routed by path)."""

    def __init__(self) -> None:
        self.faults = Faults()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path == "/_local/ready":
            return Response("ready")
        if path == "/_local/faults" and request.method == "POST":
            self.faults.set(list(request.get_json(force=True)))
            return _json({"ok": True})
        if request.method != "GET":
            return _json({"error": {"message": "method not allowed"}}, 405)
        if path.startswith("/v1/organization/"):
            return self.openai(request)
        if path.startswith("/v1/organizations/"):
            return self.anthropic(request)
        return _json({"error": {"message": f"unknown path {path}"}}, 404)

    # ---------------------------------------------------------------- OpenAI

    def openai(self, request: Request) -> Response:  # noqa: PLR0912 - one contract, read top down
        def error(status: int, message: str, kind: str, code: str | None) -> Response:
            body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
            return _json(body, status)

        auth = request.headers.get("Authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else ""
        if not key:
            return error(401, "You didn't provide an API key.", "invalid_request_error", None)
        if not key.startswith(OPENAI_ADMIN_PREFIX):
            if key.startswith("sk-"):
                return error(
                    403,
                    "You have insufficient permissions for this operation. "
                    "Missing scopes: api.usage.read. An Admin API key is required.",
                    "invalid_request_error",
                    "insufficient_permissions",
                )
            return error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        if key[len(OPENAI_ADMIN_PREFIX) :].startswith("revoked"):
            return error(
                401, "This API key has been revoked.", "invalid_request_error", "invalid_api_key"
            )
        fault = self.faults.hit(key, request.path)
        if fault and fault["kind"] == "status":
            status = int(fault.get("status", 500))
            headers = {"retry-after": str(fault["retry_after"])} if "retry_after" in fault else None
            body = {
                "error": {
                    "message": "injected",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            return _json(body, status, headers)
        args = request.args
        try:
            start = int(args["start_time"])
        except (KeyError, ValueError):
            return error(
                400, "start_time is required (Unix seconds)", "invalid_request_error", None
            )
        end = int(args["end_time"]) if args.get("end_time") else None
        if args.get("bucket_width", "1d") != "1d":
            return error(400, "bucket_width must be 1d here", "invalid_request_error", None)
        limit = int(args.get("limit", 7))
        most = 31 if request.path.startswith("/v1/organization/usage/") else 180
        if not 1 <= limit <= most:
            return error(400, f"limit must be between 1 and {most}", "invalid_request_error", None)
        group_by = set(args.getlist("group_by")) | set(args.getlist("group_by[]"))
        first = _day_start(dt.datetime.fromtimestamp(start, dt.UTC))
        last = dt.datetime.fromtimestamp(end, dt.UTC) if end else first + DAY * limit
        days = []
        day = first
        while day < last:
            days.append(day)
            day += DAY
        offset = 0
        if args.get("page"):
            decoded = _decode_cursor(args["page"])
            if decoded is None:
                return error(400, "invalid page", "invalid_request_error", None)
            offset = decoded
        chunk = days[offset : offset + limit]
        has_more = offset + limit < len(days)
        next_page = _encode_cursor(offset + limit) if has_more else None
        if fault and fault["kind"] == "repeat_cursor" and args.get("page"):
            next_page, has_more = args["page"], True
        data = []
        for bucket_start in chunk:
            results = self._openai_results(key, bucket_start.date(), request.path, group_by)
            if results is None:
                return error(
                    404, f"Invalid URL (GET {request.path})", "invalid_request_error", None
                )
            data.append(
                {
                    "object": "bucket",
                    "start_time": int(bucket_start.timestamp()),
                    "end_time": int((bucket_start + DAY).timestamp()),
                    "results": results,
                }
            )
        text = json.dumps(
            {"object": "page", "data": data, "has_more": has_more, "next_page": next_page}
        )
        if fault and fault["kind"] == "malformed_amount":
            text = text.replace('"value": ', '"value": "12,5x"  , "_was": ', 1)
        return Response(text, mimetype="application/json")

    def _openai_results(
        self, key: str, day: dt.date, path: str, group_by: set[str]
    ) -> list[Any] | None:
        """The results of one day's bucket of this path; None for an unknown path."""
        if path == "/v1/organization/costs":
            return self._openai_cost_results(key, day, group_by)
        if path == "/v1/organization/usage/completions":
            return self._openai_usage_results(key, day, group_by)
        endpoint = path.removeprefix("/v1/organization/usage/")
        if path.startswith("/v1/organization/usage/") and endpoint in OPENAI_OTHER_USAGE:
            return self._openai_other_results(key, day, endpoint, group_by)
        return None

    def _openai_cost_results(self, key: str, day: dt.date, group_by: set[str]) -> list[Any]:
        totals: dict[tuple[Any, ...], Decimal] = {}
        for row in openai_costs(key, day):
            group = tuple(row[g] if g in group_by else None for g in ("project_id", "line_item"))
            totals[group] = totals.get(group, Decimal(0)) + row["value"]
        return [
            {
                "object": "organization.costs.result",
                # A JSON number, as OpenAI sends it. Amounts have at most 12 significant
                # digits, so the float's shortest repr is the exact decimal, and
                # json.loads(parse_float=Decimal) reads that text back exactly.
                "amount": {"value": float(value), "currency": "usd"},
                "line_item": group[1],
                "project_id": group[0],
            }
            for group, value in totals.items()
        ]

    def _openai_usage_results(self, key: str, day: dt.date, group_by: set[str]) -> list[Any]:
        fields = ("input_tokens", "input_cached_tokens", "output_tokens", "num_model_requests")
        totals: dict[tuple[Any, ...], dict[str, int]] = {}
        for row in openai_usage(key, day):
            group = tuple(row[g] if g in group_by else None for g in ("project_id", "model"))
            acc = totals.setdefault(group, dict.fromkeys(fields, 0))
            for f in fields:
                acc[f] += row[f]
        return [
            {
                "object": "organization.usage.completions.result",
                **acc,
                "input_audio_tokens": 0,
                "output_audio_tokens": 0,
                "project_id": group[0],
                "model": group[1],
                "user_id": None,
                "api_key_id": None,
                "batch": None,
            }
            for group, acc in totals.items()
        ]

    def _openai_other_results(
        self, key: str, day: dt.date, endpoint: str, group_by: set[str]
    ) -> list[Any]:
        field = OPENAI_OTHER_USAGE[endpoint][1]
        totals: dict[tuple[Any, ...], dict[str, int]] = {}
        for row in openai_other_usage(key, day, endpoint):
            group = tuple(row[g] if g in group_by else None for g in ("project_id", "model"))
            acc = totals.setdefault(group, {field: 0, "num_model_requests": 0})
            for f in (field, "num_model_requests"):
                acc[f] += row[f]
        extra = {"source": None, "size": None} if endpoint == "images" else {}
        return [
            {
                "object": f"organization.usage.{endpoint}.result",
                **acc,
                "project_id": group[0],
                "model": group[1],
                "user_id": None,
                "api_key_id": None,
                **extra,
            }
            for group, acc in totals.items()
        ]

    # ---------------------------------------------------------------- Anthropic

    def anthropic(self, request: Request) -> Response:  # noqa: PLR0912 - one contract, read top down
        def error(status: int, kind: str, message: str, headers: Any = None) -> Response:
            return _json(
                {"type": "error", "error": {"type": kind, "message": message}}, status, headers
            )

        key = request.headers.get("x-api-key", "")
        if not key:
            return error(401, "authentication_error", "x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            return error(400, "invalid_request_error", "anthropic-version header is required")
        if not key.startswith(ANTHROPIC_ADMIN_PREFIX):
            if key.startswith("sk-ant-"):
                return error(
                    403,
                    "permission_error",
                    "This endpoint requires an Admin API key (sk-ant-admin...).",
                )
            return error(401, "authentication_error", "invalid x-api-key")
        if key[len(ANTHROPIC_ADMIN_PREFIX) :].startswith("revoked"):
            return error(401, "authentication_error", "invalid x-api-key")
        fault = self.faults.hit(key, request.path)
        if fault and fault["kind"] == "status":
            status = int(fault.get("status", 500))
            headers = {"retry-after": str(fault["retry_after"])} if "retry_after" in fault else None
            kind = "rate_limit_error" if status == 429 else "api_error"
            return error(status, kind, "injected", headers)
        args = request.args
        try:
            start = dt.datetime.fromisoformat(args["starting_at"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            return error(400, "invalid_request_error", "starting_at is required (RFC 3339)")
        end = (
            dt.datetime.fromisoformat(args["ending_at"].replace("Z", "+00:00"))
            if args.get("ending_at")
            else None
        )
        if args.get("bucket_width", "1d") != "1d":
            return error(400, "invalid_request_error", "bucket_width must be 1d here")
        limit = int(args.get("limit", 7))
        if not 1 <= limit <= 31:
            return error(400, "invalid_request_error", "limit must be between 1 and 31")
        group_by = set(args.getlist("group_by[]")) | set(args.getlist("group_by"))
        first = _day_start(start.astimezone(dt.UTC))
        if first < start.astimezone(dt.UTC):
            first += DAY  # buckets that start on or after starting_at
        last = end.astimezone(dt.UTC) if end else first + DAY * limit
        days = []
        day = first
        while day + DAY <= last:  # buckets that end before (or at) ending_at
            days.append(day)
            day += DAY
        offset = 0
        if args.get("page"):
            decoded = _decode_cursor(args["page"])
            if decoded is None:
                return error(400, "invalid_request_error", "invalid page")
            offset = decoded
        chunk = days[offset : offset + limit]
        has_more = offset + limit < len(days)
        next_page = _encode_cursor(offset + limit) if has_more else None
        if fault and fault["kind"] == "repeat_cursor" and args.get("page"):
            next_page, has_more = args["page"], True
        data = []
        for bucket_start in chunk:
            if request.path == "/v1/organizations/cost_report":
                results = self._anthropic_cost_results(key, bucket_start.date(), group_by)
            elif request.path == "/v1/organizations/usage_report/messages":
                results = self._anthropic_usage_results(key, bucket_start.date(), group_by)
            else:
                return error(404, "not_found_error", f"unknown path {request.path}")
            data.append(
                {
                    "starting_at": bucket_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "ending_at": (bucket_start + DAY).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "results": results,
                }
            )
        text = json.dumps({"data": data, "has_more": has_more, "next_page": next_page})
        if fault and fault["kind"] == "malformed_amount":
            text = text.replace('"amount": "', '"amount": "1.2.3', 1)
        return Response(text, mimetype="application/json")

    def _anthropic_cost_results(self, key: str, day: dt.date, group_by: set[str]) -> list[Any]:
        by_description = "description" in group_by
        by_workspace = "workspace_id" in group_by
        totals: dict[tuple[Any, ...], Decimal] = {}
        for row in anthropic_costs(key, day):
            cost_type = row.get("cost_type", "tokens")
            description = None
            if by_description:
                description = (
                    f"{row['model']} {_ANTHROPIC_TOKEN_LABELS[row['token_type']]} tokens"
                    if cost_type == "tokens"
                    else "Web search"
                )
            group = (
                row["workspace_id"] if by_workspace else None,
                description,
                cost_type if by_description else None,
                row["model"] if by_description else None,
                row["token_type"] if by_description else None,
            )
            totals[group] = totals.get(group, Decimal(0)) + row["cents"]
        return [
            {
                "currency": "USD",
                "amount": _number(cents),
                "workspace_id": group[0],
                "description": group[1],
                "cost_type": group[2],
                "context_window": "0-200k" if group[2] == "tokens" else None,
                "model": group[3],
                "service_tier": "standard" if group[2] == "tokens" else None,
                "token_type": group[4],
            }
            for group, cents in totals.items()
        ]

    def _anthropic_usage_results(self, key: str, day: dt.date, group_by: set[str]) -> list[Any]:
        totals: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in anthropic_usage(key, day):
            group = tuple(row[g] if g in group_by else None for g in ("workspace_id", "model"))
            acc = totals.setdefault(
                group,
                {
                    "uncached_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 0,
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": 0,
                        "ephemeral_1h_input_tokens": 0,
                    },
                    "server_tool_use": {"web_search_requests": 0},
                },
            )
            for f in ("uncached_input_tokens", "cache_read_input_tokens", "output_tokens"):
                acc[f] += row[f]
            for f in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
                acc["cache_creation"][f] += row["cache_creation"][f]
        return [
            {
                **acc,
                "workspace_id": group[0],
                "model": group[1],
                "api_key_id": None,
                "service_tier": None,
                "context_window": None,
            }
            for group, acc in totals.items()
        ]


class GenAiStandIns:
    """The stand-in server in a thread of this process, on a free port (a LocalServer)."""

    name = "openai and anthropic admin API stand-ins"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.app = GenAiApis()
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        try:
            self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        except OSError as exc:
            raise RuntimeError(f"port {self.port}: {exc.strerror}") from None
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="genai-apis", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def environment(self) -> dict[str, str]:
        return {"OPENAI_ADMIN_API_BASE": self.url, "ANTHROPIC_ADMIN_API_BASE": self.url}

    def endpoints(self) -> dict[str, object]:
        return {"openai_api_base": self.url, "anthropic_api_base": self.url}
