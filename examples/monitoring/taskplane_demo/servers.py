"""The real local servers the reference workload talks to: monitored sites, a webhook receiver, an SMTP server.

Each listens on 127.0.0.1 (a free port unless given), runs in threads of the calling process, and is
stopped with :meth:`stop`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from taskplane.stack import free_port
from taskplane_demo.delivery import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


class _HttpServer:
    """A threading HTTP server on 127.0.0.1 whose handler calls back into the owning object."""

    def __init__(self, handle: Any, port: int | None = None) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handle(self, "GET")

            def do_POST(self) -> None:
                handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port or free_port()), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-http", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "text/plain") -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Sites:
    """Monitored pages at ``/site/N``; :meth:`change` rewrites one (a competitor updating their pricing page)."""

    def __init__(self, count: int, seed: int = 7, port: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.versions = dict.fromkeys(range(1, count + 1), 1)
        self.hits = 0
        self._http = _HttpServer(self._handle, port)

    def url(self, number: int) -> str:
        """The URL of page ``number``."""
        return f"{self._http.base_url}/site/{number}"

    def change(self, number: int | None = None) -> int:
        """Publish a new version of page ``number`` (a random one if not given); returns its number."""
        with self._lock:
            number = number or self._rng.choice(sorted(self.versions))
            self.versions[number] += 1
            return number

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = handler.path.strip("/").split("/")
        with self._lock:
            self.hits += 1
            version = self.versions.get(int(parts[1])) if len(parts) == 2 and parts[1].isdigit() else None
        if method != "GET" or parts[0] != "site" or version is None:
            _reply(handler, 404, b"not found")
            return
        price = 100 + version * 7 % 50
        page = f"<html><body><h1>Competitor {parts[1]}</h1><p>Plan price: {price} EUR (v{version})</p></body></html>"
        _reply(handler, 200, page.encode(), "text/html")

    def stop(self) -> None:
        """Stop the server."""
        self._http.stop()


@dataclass
class Delivery:
    """One webhook request as the receiver saw it."""

    path: str
    idempotency_key: str
    signature_ok: bool
    status: int
    payload: bytes = field(repr=False)


class WebhookReceiver:
    """``POST /hooks/NAME``: checks the HMAC signature (401 if wrong), answers 200 once per idempotency key
    (a repeat is acknowledged, not processed twice); ``/hooks/broken`` always answers 503."""

    def __init__(self, secret: str, port: int | None = None) -> None:
        self.secret = secret
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self.processed: dict[str, bytes] = {}
        self._http = _HttpServer(self._handle, port)

    def url(self, name: str) -> str:
        """The URL of endpoint ``name`` (``broken`` fails with 503)."""
        return f"{self._http.base_url}/hooks/{name}"

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        key = handler.headers.get(IDEMPOTENCY_HEADER, "")
        signed = verify(
            self.secret, handler.headers.get(TIMESTAMP_HEADER, ""), body, handler.headers.get(SIGNATURE_HEADER, "")
        )
        if method != "POST" or not handler.path.startswith("/hooks/"):
            status = 404
        elif handler.path == "/hooks/broken":
            status = 503
        elif not signed or not key:
            status = 401
        else:
            status = 200
        with self._lock:
            self.deliveries.append(Delivery(handler.path, key, signed, status, body))
            if status == 200:
                self.processed.setdefault(key, body)
        _reply(handler, status, b'{"ok":true}' if status == 200 else b'{"ok":false}', "application/json")

    def stop(self) -> None:
        """Stop the server."""
        self._http.stop()


@dataclass
class Mail:
    """One received email."""

    sender: str
    recipients: list[str]
    subject: str
    body: str


class _MailHandler:
    def __init__(self, inbox: list[Mail], lock: threading.Lock) -> None:
        self.inbox = inbox
        self.lock = lock

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content)
        payload = message.get_payload(decode=True)
        body = payload.decode(errors="replace") if isinstance(payload, bytes) else str(message.get_payload())
        with self.lock:
            self.inbox.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), str(message["Subject"]), body))
        return "250 Message accepted for delivery"


class MailServer:
    """An SMTP server (aiosmtpd) that keeps every message it accepts in :attr:`inbox`."""

    def __init__(self, port: int | None = None) -> None:
        self.inbox: list[Mail] = []
        self._lock = threading.Lock()
        self.port = port or free_port()
        self._controller = Controller(_MailHandler(self.inbox, self._lock), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        """Stop the server."""
        self._controller.stop()
