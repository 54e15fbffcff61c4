"""Process settings read from the environment, validated once per process."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]

_DATASET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")


class Settings(BaseSettings):
    """Everything a function, the job or the local stack reads from its environment.

    Secrets (admin key, API-key pepper, Stripe webhook secret) are not here:
    they come through the secrets port, so production can read them from
    Secret Manager.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    environment: Literal["local", "test", "production"] = Field(
        default="local", validation_alias="CONVERGENCE_ENV"
    )
    gcp_project: str = Field(default="convergence-local", validation_alias="GCP_PROJECT")
    bq_location: str = Field(default="US", validation_alias="BQ_LOCATION")
    central_dataset: str = Field(default="tenants", validation_alias="CENTRAL_DATASET")
    # Appended to every tenant dataset name, e.g. "_dev" -> "acme_dev".
    tenant_dataset_suffix: str = Field(default="", validation_alias="TENANT_DATASET_SUFFIX")
    # Set in the local stack and tests: the real client then talks to bqemulator.
    bigquery_emulator_host: str | None = Field(
        default=None, validation_alias="BIGQUERY_EMULATOR_HOST"
    )
    local_data_dir: Path = Field(default=REPO_ROOT / ".local", validation_alias="LOCAL_DATA_DIR")
    schemas_dir: Path = Field(default=REPO_ROOT / "schemas", validation_alias="SCHEMAS_DIR")
    frontend_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="FRONTEND_ORIGINS"
    )
    max_body_bytes: int = Field(default=1024 * 1024, validation_alias="MAX_BODY_BYTES")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    # Seconds a positive or negative API-key lookup is trusted in memory;
    # revocation reaches other processes within this bound.
    auth_cache_ttl_seconds: float = Field(
        default=30.0, ge=0, le=60, validation_alias="AUTH_CACHE_TTL_SECONDS"
    )
    # Production crypto: per-tenant key-encryption keys live in this Cloud KMS
    # key ring ("projects/P/locations/L/keyRings/R"). Unset: local Tink keysets.
    kms_key_ring: str | None = Field(default=None, validation_alias="KMS_KEY_RING")
    # Where platform secrets come from: env (+ local file) or Secret Manager.
    secrets_backend: Literal["env", "secret_manager"] = Field(
        default="env", validation_alias="SECRETS_BACKEND"
    )
    # Days a tenant stays PAST_DUE after a failed payment before it is suspended.
    payment_grace_days: int = Field(default=7, ge=0, le=60, validation_alias="PAYMENT_GRACE_DAYS")
    # Seconds a Stripe signature stays valid (replay window).
    stripe_signature_tolerance_seconds: int = Field(
        default=300, gt=0, le=3600, validation_alias="STRIPE_SIGNATURE_TOLERANCE"
    )
    # Lets a tenant ask for ?validate=live on credentials (a call to the provider).
    credential_live_validation: bool = Field(
        default=False, validation_alias="CREDENTIAL_LIVE_VALIDATION"
    )
    # Seconds a query job may run before the client gives up on it.
    bq_job_timeout_seconds: float = Field(default=60.0, gt=0, validation_alias="BQ_JOB_TIMEOUT")
    # How long one statement keeps retrying a warehouse it cannot reach. Unset: the client's
    # own 600 s, so the runner job rides out an outage. The functions set it short: a request
    # in an outage answers 503 with Retry-After instead of hanging (docs/drills.md, drill 2).
    bq_unreachable_seconds: float | None = Field(
        default=None, gt=0, le=600, validation_alias="BQ_UNREACHABLE_SECONDS"
    )
    # host:port of GoogleSQL's reference analyzer (ZetaSQL's local service), which
    # checks tenant SQL at upload. The local stack and the tests start one; the
    # deployed function has none and keeps the sqlglot checks alone
    # (docs/decisions.md, "SQL analysis").
    sql_analyzer_address: str | None = Field(default=None, validation_alias="SQL_ANALYZER_ADDRESS")

    # --- AWS and Azure cost exports (shared.sources.aws/azure access)
    # Unset: the providers' real hosts. The local stack and tests point them at
    # moto (S3 + STS) and Azurite; AZURE_BLOB_ENDPOINT may hold `{account}`.
    aws_s3_endpoint_url: str | None = Field(default=None, validation_alias="AWS_S3_ENDPOINT_URL")
    aws_sts_endpoint_url: str | None = Field(default=None, validation_alias="AWS_STS_ENDPOINT_URL")
    azure_blob_endpoint: str = Field(
        default="https://{account}.blob.core.windows.net", validation_alias="AZURE_BLOB_ENDPOINT"
    )
    azure_authority_host: str = Field(
        default="https://login.microsoftonline.com", validation_alias="AZURE_AUTHORITY_HOST"
    )
    # Local only: the CA that signed the local Azurite / Entra stand-ins' TLS certificates.
    cloud_ca_bundle: Path | None = Field(default=None, validation_alias="CLOUD_CA_BUNDLE")
    # Every Google ID token the platform presents to AWS or Entra has the audience
    # `<this>/<tenant's external id>`: customers trust exactly their own audience.
    cloud_token_audience: str = Field(
        default="https://convergence.local/cloud-access", validation_alias="CLOUD_TOKEN_AUDIENCE"
    )
    # The runner service account: its ID tokens are the platform's identity
    # (production: impersonated by the credentials function, which checks access).
    runner_service_account: str | None = Field(
        default=None, validation_alias="RUNNER_SERVICE_ACCOUNT"
    )
    # Its numeric unique id: the `sub` customers put in their trust (Terraform output).
    runner_identity_subject: str = Field(
        default="100000000000000000001", validation_alias="RUNNER_IDENTITY_SUBJECT"
    )
    # Local only: sign ID tokens with this key instead of asking Google.
    local_id_token_key: Path | None = Field(default=None, validation_alias="LOCAL_ID_TOKEN_KEY")
    cloud_access_timeout_seconds: float = Field(
        default=15.0, gt=0, le=120, validation_alias="CLOUD_ACCESS_TIMEOUT"
    )

    # --- GenAI admin APIs (shared.sources.openai / anthropic)
    # The providers' hosts; the local stack and tests point them at local/genai_apis.py.
    openai_admin_api_base: str = Field(
        default="https://api.openai.com", validation_alias="OPENAI_ADMIN_API_BASE"
    )
    anthropic_admin_api_base: str = Field(
        default="https://api.anthropic.com", validation_alias="ANTHROPIC_ADMIN_API_BASE"
    )
    genai_api_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, validation_alias="GENAI_API_TIMEOUT"
    )

    # --- scheduling and dispatch
    # How admitted runs reach the runner: Cloud Tasks -> Cloud Run Admin API
    # jobs.run in production, a durable queue in the data dir locally.
    dispatch_backend: Literal["local", "cloud_tasks"] = Field(
        default="local", validation_alias="DISPATCH_BACKEND"
    )
    # Region of the Tasks queue and of the Cloud Run job.
    cloud_region: str = Field(default="us-central1", validation_alias="CLOUD_REGION")
    tasks_queue: str = Field(default="pipeline-runs", validation_alias="TASKS_QUEUE")
    runner_job: str = Field(default="pipeline-runner", validation_alias="RUNNER_JOB")
    # The service account whose OAuth token a task carries to call jobs.run.
    tasks_invoker_sa: str | None = Field(default=None, validation_alias="TASKS_INVOKER_SA")
    # The trigger accepts an OIDC token of this service account for this audience.
    scheduler_sa: str | None = Field(default=None, validation_alias="SCHEDULER_SA")
    trigger_audience: str | None = Field(default=None, validation_alias="TRIGGER_AUDIENCE")
    # Where Google publishes the keys that sign those tokens (tests point it at a stand-in).
    google_certs_url: str = Field(
        default="https://www.googleapis.com/oauth2/v1/certs", validation_alias="GOOGLE_CERTS_URL"
    )
    # A running run beats this often; one silent for RUN_STALE_AFTER_SECONDS is reaped.
    run_heartbeat_seconds: float = Field(
        default=30.0, gt=0, le=600, validation_alias="RUN_HEARTBEAT_SECONDS"
    )
    run_stale_after_seconds: float = Field(
        default=600.0, ge=60, validation_alias="RUN_STALE_AFTER_SECONDS"
    )
    # Local stack only: the ticker that stands in for Cloud Scheduler, and how
    # many runner subprocesses the local dispatcher starts at once.
    scheduler_tick_seconds: float = Field(
        default=60.0, gt=0, validation_alias="SCHEDULER_TICK_SECONDS"
    )
    # 0 holds every task in the queue: the failure drills deliver them themselves.
    local_runner_concurrency: int = Field(
        default=2, ge=0, le=32, validation_alias="LOCAL_RUNNER_CONCURRENCY"
    )

    # --- notifications (shared.notify): outbox sender, email and webhooks
    # Local stack and tests only: webhooks may target localhost (http or https),
    # so a receiver on 127.0.0.1 works; refused in production (SSRF rules).
    webhook_localhost_allowed: bool = Field(
        default=False, validation_alias="WEBHOOK_LOCALHOST_ALLOWED"
    )
    # Local only: a CA that signed a local https webhook receiver's certificate.
    webhook_ca_bundle: Path | None = Field(default=None, validation_alias="WEBHOOK_CA_BUNDLE")
    notify_from_address: str = Field(
        default="Convergence alerts <alerts@convergence.local>", validation_alias="NOTIFY_FROM"
    )
    # A message is FAILED after this many delivery attempts (backoff doubles, 1 min .. 6 h).
    notify_max_attempts: int = Field(default=8, ge=1, le=30, validation_alias="NOTIFY_MAX_ATTEMPTS")
    # Messages one sender pass takes, so a tick stays bounded.
    notify_batch_size: int = Field(default=50, ge=1, le=1000, validation_alias="NOTIFY_BATCH_SIZE")

    @field_validator("frontend_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    @field_validator("frontend_origins")
    @classmethod
    def _no_wildcard(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Credentials (X-API-Key) cross origins, so "*" would hand every site
        # the tenant's session: list origins explicitly.
        for origin in value:
            if origin == "*" or not re.match(r"^https?://[^/*\s]+$", origin):
                raise ValueError(
                    f"FRONTEND_ORIGINS entry {origin!r} must be a scheme://host origin"
                )
        return value

    @field_validator("central_dataset")
    @classmethod
    def _dataset_name(cls, value: str) -> str:
        if not _DATASET_RE.match(value):
            raise ValueError("CENTRAL_DATASET is not a valid BigQuery dataset id")
        return value

    @field_validator("tenant_dataset_suffix")
    @classmethod
    def _suffix(cls, value: str) -> str:
        if value and not re.match(r"^[a-z0-9_]{1,20}$", value):
            raise ValueError("TENANT_DATASET_SUFFIX must match ^[a-z0-9_]{1,20}$")
        return value

    @model_validator(mode="after")
    def _production_uses_real_services(self) -> Settings:
        if self.environment != "production":
            return self
        if self.bigquery_emulator_host:
            raise ValueError("BIGQUERY_EMULATOR_HOST must not be set in production")
        if not self.kms_key_ring:
            raise ValueError("KMS_KEY_RING is required in production (credentials need Cloud KMS)")
        if self.dispatch_backend != "cloud_tasks":
            raise ValueError("DISPATCH_BACKEND must be cloud_tasks in production")
        if self.local_id_token_key or self.cloud_ca_bundle:
            raise ValueError("LOCAL_ID_TOKEN_KEY and CLOUD_CA_BUNDLE are for the local stack only")
        if not self.runner_service_account:
            raise ValueError("RUNNER_SERVICE_ACCOUNT is required in production (cloud access)")
        if self.webhook_localhost_allowed or self.webhook_ca_bundle:
            raise ValueError("WEBHOOK_LOCALHOST_ALLOWED and WEBHOOK_CA_BUNDLE are local only")
        if self.run_heartbeat_seconds * 3 > self.run_stale_after_seconds:
            raise ValueError("RUN_STALE_AFTER_SECONDS must allow at least three missed heartbeats")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once; tests clear the cache to re-read."""
    return Settings()
