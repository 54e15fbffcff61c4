"""The sender: claims due outbox messages, delivers each to every channel, marks each once."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from shared.deps import Deps
from shared.notify import email, outbox, render, webhooks
from shared.notify.webhook_urls import Resolver, system_resolver

log = logging.getLogger(__name__)


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _admin_emails(deps: Deps, tenant_ids: list[str]) -> dict[str, str]:
    if not tenant_ids:
        return {}
    rows = deps.warehouse.query(
        f"SELECT tenant_id, admin_email FROM {deps.warehouse.central('tenant_profiles')} "
        "WHERE tenant_id IN UNNEST(@tenants) AND deleted_at IS NULL",
        {"tenants": tenant_ids},
        component="notify_sender",
    )
    return {str(r["tenant_id"]): str(r["admin_email"]) for r in rows if r["admin_email"]}


def _deliver(
    deps: Deps,
    message: outbox.Message,
    *,
    relay: email.Relay | None,
    admin: str | None,
    hooks: list[webhooks.Webhook],
    resolve: Resolver,
) -> str | None:
    """None if every channel took the message, else the errors (safe text).

    A message is retried whole: a channel that already took it may get it
    again, with the same message id (receivers dedupe on it).
    """
    errors: list[str] = []
    recipients = list(dict.fromkeys([*([admin] if admin else []), *message.recipients]))
    if relay is not None and recipients:
        mail = render.email_message(message, deps.settings.notify_from_address, recipients)
        try:
            email.send(relay, mail, recipients)
        except email.EmailError as exc:
            errors.append(str(exc))
    if hooks:
        body = render.webhook_body(message)
        for hook in hooks:
            try:
                webhooks.deliver(deps, hook, message.message_id, body, resolve)
            except webhooks.DeliveryError as exc:
                errors.append(str(exc))
    return "; ".join(errors) or None


def send_due(
    deps: Deps, *, limit: int | None = None, resolve: Resolver = system_resolver
) -> SendReport:
    """One bounded pass: at most `limit` messages, five statements whatever the number."""
    settings = deps.settings
    now = deps.clock()
    lease, messages = outbox.claim(
        deps.warehouse,
        now,
        limit=limit or settings.notify_batch_size,
        max_attempts=settings.notify_max_attempts,
    )
    report = SendReport(claimed=len(messages))
    if not messages:
        return report
    tenants = sorted({m.tenant_id for m in messages})
    admins = _admin_emails(deps, tenants)
    hooks = webhooks.active_webhooks(deps, tenants)
    relay = email.relay_from(deps.secrets, require_tls=settings.is_production)
    outcomes = {
        m.message_id: _deliver(
            deps,
            m,
            relay=relay,
            admin=admins.get(m.tenant_id),
            hooks=hooks.get(m.tenant_id, []),
            resolve=resolve,
        )
        for m in messages
    }
    outbox.finish(
        deps.warehouse, lease, outcomes, deps.clock(), max_attempts=settings.notify_max_attempts
    )
    report.sent = sum(err is None for err in outcomes.values())
    report.retrying = report.claimed - report.sent
    log.info("notifications sent", extra=report.as_dict())
    return report
