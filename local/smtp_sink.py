"""A local SMTP sink: takes every message and writes it to `<data dir>/mail/<id>.eml`.

Speaks enough of RFC 5321 for smtplib and any relay client (EHLO/HELO, MAIL,
RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT). It offers no STARTTLS and
no AUTH, so the sender's production rule (no credentials without STARTTLS)
is exercised against it too. Never deployed.
"""

from __future__ import annotations

import email
import email.policy
import re
import socketserver
import sys
import threading
import uuid
from pathlib import Path

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")


class _Session(socketserver.StreamRequestHandler):
    server: _SinkServer
    timeout = 30

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:  # noqa: PLR0912 - one branch per SMTP verb
        self._reply("220 convergence-smtp-sink ESMTP")
        sender: str | None = None
        recipients: list[str] = []
        while True:
            raw = self.rfile.readline(4096)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb == "EHLO":
                self._reply("250-convergence-smtp-sink")
                self._reply(f"250-SIZE {MAX_MESSAGE_BYTES}")
                self._reply("250 8BITMIME")
            elif verb == "HELO":
                self._reply("250 convergence-smtp-sink")
            elif line.upper().startswith("MAIL FROM:"):
                sender, recipients = line[10:].strip(), []
                self._reply("250 OK")
            elif line.upper().startswith("RCPT TO:"):
                if sender is None:
                    self._reply("503 MAIL first")
                    continue
                recipients.append(line[8:].strip().strip("<>"))
                self._reply("250 OK")
            elif verb == "DATA":
                if not recipients:
                    self._reply("503 RCPT first")
                    continue
                self._reply("354 end with <CRLF>.<CRLF>")
                data = self._read_data()
                if data is None:
                    self._reply("552 message too big")
                else:
                    self._reply(f"250 OK {self.server.store(data, recipients)}")
                sender, recipients = None, []
            elif verb == "RSET":
                sender, recipients = None, []
                self._reply("250 OK")
            elif verb == "NOOP":
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 command not implemented")

    def _read_data(self) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            raw = self.rfile.readline(65536)
            if not raw or raw in (b".\r\n", b".\n"):
                break
            if raw.startswith(b".."):
                raw = raw[1:]
            size += len(raw)
            if size <= MAX_MESSAGE_BYTES:
                chunks.append(raw)
        return b"".join(chunks) if size <= MAX_MESSAGE_BYTES else None


class _SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], mail_dir: Path) -> None:
        super().__init__(address, _Session)
        self.mail_dir = mail_dir

    def store(self, data: bytes, recipients: list[str]) -> str:
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        # The platform's message id names the file, so a resent alert overwrites itself.
        name = _SAFE_ID.sub("_", str(parsed.get("X-Convergence-Message-Id") or "")) or (
            "mail_" + uuid.uuid4().hex
        )
        path = self.mail_dir / f"{name}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        print(
            f"[convergence] mail to {', '.join(recipients)}: {parsed.get('Subject', '')} -> {path}",
            file=sys.stderr,
            flush=True,
        )
        return name


class SmtpSink:
    """The local mail relay (a LocalServer of local/stack.py)."""

    name = "smtp sink"

    def __init__(self, mail_dir: Path, port: int = 0) -> None:
        self.mail_dir = mail_dir
        self.port = port
        self._server: _SinkServer | None = None

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("the SMTP sink is not running")
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._server = _SinkServer(("127.0.0.1", self.port), self.mail_dir)
        except OSError as exc:
            raise RuntimeError(f"cannot listen on 127.0.0.1:{self.port} ({exc.strerror})") from None
        threading.Thread(target=self._server.serve_forever, name="smtp-sink", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def environment(self) -> dict[str, str]:
        return {"SMTP_HOST": self.address}

    def endpoints(self) -> dict[str, object]:
        return {"smtp_sink": self.address, "mail_dir": str(self.mail_dir)}
