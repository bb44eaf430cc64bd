"""How ``taskplane api`` serves HTTP: uvicorn with its httptools protocol and a header deadline.

uvicorn bounds a keep-alive connection's idle time between requests, but not a connection that has sent no
request yet nor the time a client takes to send its request line and headers: every byte it receives
cancels the keep-alive timer, so a client that sends one byte a second holds its connection (and a file
descriptor) for ever. Here every request's headers must be complete within ``header_timeout`` seconds of
the connection or of the request's first byte; a client that is later gets ``408`` and the connection is
closed. The request body has its own bound (``api_read_timeout``, :mod:`taskplane.api.body_limit`).
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_LATE_BODY = json.dumps(
    {"error": {"code": "request_timeout", "message": "the request headers did not arrive in time"}}
).encode()
#: What a client whose headers are late reads before the connection closes (the API's error shape).
LATE_HEADERS = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + b"content-length: %d\r\n\r\n" % len(_LATE_BODY)
    + _LATE_BODY
)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers are late (see the module)."""

    header_timeout = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the deadline of the first request's headers."""
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        """A request's first byte: its headers are due within the deadline."""
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        """The headers are in: no deadline until the next request begins."""
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout, self._late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm()  # a response is still being written (pipelined headers wait on it): look again later
            return
        self.transport.write(LATE_HEADERS)
        self.transport.close()


def header_deadline_protocol(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for uvicorn's ``http=`` with this deadline in seconds."""
    return type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout})
