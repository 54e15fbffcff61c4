"""The one error type the API raises, and its JSON shape."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error a client may see: an HTTP status, a stable code and a human detail.

    Raise it anywhere in `shared/`; the HTTP layer turns it into
    `{"error": code, "detail": detail, ...extra}` once. Never put a secret,
    a stack trace or an internal name in `detail` or `extra`.
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


def bad_request(code: str, detail: str, **extra: Any) -> ApiError:
    return ApiError(400, code, detail, **extra)


def unauthorized(detail: str = "missing or invalid credentials") -> ApiError:
    return ApiError(401, "unauthorized", detail)


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "forbidden", detail)


def not_found(detail: str) -> ApiError:
    return ApiError(404, "not_found", detail)


def conflict(detail: str, **extra: Any) -> ApiError:
    return ApiError(409, "conflict", detail, **extra)


def unprocessable(code: str, detail: str, **extra: Any) -> ApiError:
    return ApiError(422, code, detail, **extra)


def too_many_requests(detail: str, retry_after_seconds: int, **extra: Any) -> ApiError:
    return ApiError(
        429,
        "quota_exceeded",
        detail,
        headers={"Retry-After": str(max(1, int(retry_after_seconds)))},
        **extra,
    )


def unavailable(detail: str, retry_after_seconds: int = 5) -> ApiError:
    return ApiError(
        503,
        "unavailable",
        detail,
        headers={"Retry-After": str(max(1, int(retry_after_seconds)))},
    )
