"""How a message reads: an email (plain text) and a Slack-compatible webhook body."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

from shared.notify.outbox import Message


def fact_lines(message: Message) -> list[str]:
    return [f"{key}: {value}" for key, value in sorted(message.facts.items()) if key != "text"]


def email_text(message: Message) -> str:
    lines = [message.subject, ""]
    if isinstance(message.facts.get("text"), str):
        lines += [message.facts["text"], ""]
    lines += fact_lines(message)
    lines += ["", f"Message id: {message.message_id} (the same id means the same alert)."]
    return "\n".join(lines) + "\n"


def email_message(message: Message, sender: str, recipients: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = f"[Convergence] {message.subject}"
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    # A resent duplicate carries the same Message-ID, so mail clients fold it.
    mail["Message-ID"] = f"<{message.message_id}@convergence>"
    mail["X-Convergence-Message-Id"] = message.message_id
    mail["X-Convergence-Kind"] = message.kind
    mail.set_content(email_text(message))
    return mail


def webhook_body(message: Message) -> bytes:
    """Slack incoming-webhook JSON (`text` + `blocks`) plus the machine-readable fields."""
    detail = "\n".join(
        f"*{line.split(': ', 1)[0]}*: {line.split(': ', 1)[1]}" for line in fact_lines(message)
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}},
    ]
    if isinstance(message.facts.get("text"), str):
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": message.facts["text"]}}
        )
    if detail:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": detail[:3000]}})
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"message id `{message.message_id}`"}],
        }
    )
    body = {
        "text": message.subject,
        "blocks": blocks,
        "message_id": message.message_id,
        "tenant_id": message.tenant_id,
        "kind": message.kind,
        "facts": message.facts,
        "created_at": message.created_at.isoformat(),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
