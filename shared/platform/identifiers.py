"""Validation and quoting of BigQuery identifiers and tenant ids: the only way names reach SQL."""

from __future__ import annotations

import hashlib
import re

from shared.platform.errors import unprocessable

TENANT_ID_RE = re.compile(r"^[a-z0-9_]{3,50}$")
_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATASET_RE = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_TABLE_RE = re.compile(r"^[A-Za-z0-9_]{1,1024}$")

# Names a tenant may never take: they collide with platform datasets, SQL
# keywords BigQuery treats specially, or our own routes.
RESERVED_TENANT_IDS = frozenset(
    {
        "admin",
        "api",
        "default",
        "information_schema",
        "null",
        "platform",
        "public",
        "root",
        "system",
        "tenants",
        "test",
    }
)


class InvalidIdentifier(ValueError):
    """A name that must not reach SQL."""


def tenant_id_problem(tenant_id: object, central_dataset: str) -> str | None:
    """Why `tenant_id` is not acceptable, or None if it is."""
    if not isinstance(tenant_id, str) or not TENANT_ID_RE.match(tenant_id):
        return "must match ^[a-z0-9_]{3,50}$"
    if tenant_id.startswith("_"):
        return "must not start with '_'"
    if tenant_id in RESERVED_TENANT_IDS or tenant_id == central_dataset.lower():
        return f"'{tenant_id}' is reserved"
    return None


def require_tenant_id(tenant_id: object, central_dataset: str) -> str:
    problem = tenant_id_problem(tenant_id, central_dataset)
    if problem:
        raise unprocessable("invalid_tenant_id", f"tenant_id {problem}", field="tenant_id")
    return str(tenant_id)  # tenant_id_problem refused everything but a valid str


def check_project(project: str) -> str:
    # Emulator projects and test projects use the same rules as GCP.
    if not _PROJECT_RE.match(project):
        raise InvalidIdentifier(f"invalid project id {project!r}")
    return project


def check_dataset(dataset: str) -> str:
    if not _DATASET_RE.match(dataset):
        raise InvalidIdentifier(f"invalid dataset id {dataset!r}")
    return dataset


def check_table(table: str) -> str:
    if not _TABLE_RE.match(table):
        raise InvalidIdentifier(f"invalid table id {table!r}")
    return table


def quote_table(project: str, dataset: str, table: str) -> str:
    """`project.dataset.table`, backquoted, after validating each part."""
    return f"`{check_project(project)}.{check_dataset(dataset)}.{check_table(table)}`"


def quote_dataset(project: str, dataset: str) -> str:
    return f"`{check_project(project)}.{check_dataset(dataset)}`"


def derived_id(prefix: str, *parts: str) -> str:
    """`prefix` + 32 hex of SHA-256 over the parts joined by "|": the same parts always
    name the same object, which is how retried requests find what they made."""
    return prefix + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
