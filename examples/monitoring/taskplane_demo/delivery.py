"""Alert delivery: email over SMTP, and webhooks signed with HMAC-SHA256 carrying an idempotency key."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
from email.message import EmailMessage
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

SIGNATURE_HEADER = "X-Taskplane-Signature"
TIMESTAMP_HEADER = "X-Taskplane-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class WebhookTemporaryError(Exception):
    """The receiver timed out, was unreachable or answered 5xx/429: worth retrying."""


class WebhookRejectedError(Exception):
    """The receiver answered 4xx: retrying the same request cannot help."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>." + body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signed: str, tolerance: float = 300.0) -> bool:
    """True if ``signed`` is this body's signature and the timestamp is within ``tolerance`` seconds."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), signed)


def post_webhook(url: str, payload: dict[str, Any], secret: str, idempotency_key: str, timeout: float) -> int:
    """POST ``payload`` as signed JSON; returns the 2xx status.

    Raises:
        WebhookTemporaryError: timeout, connection failure, 5xx or 429.
        WebhookRejectedError: any other 4xx.
    """
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: idempotency_key,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    try:
        with urlopen(Request(url, data=body, headers=headers, method="POST"), timeout=timeout) as response:
            return int(response.status)
    except HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise WebhookTemporaryError(f"{url} answered {exc.code}") from None
        raise WebhookRejectedError(f"{url} answered {exc.code}") from None
    except (URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookTemporaryError(f"{url} unreachable: {reason}") from None


def send_email(host: str, port: int, sender: str, recipient: str, subject: str, text: str, timeout: float) -> None:
    """Send one plain-text email.

    Raises:
        smtplib.SMTPException, OSError: the server refused it or could not be reached.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content(text)
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        smtp.send_message(message)
