"""A loopback TCP proxy in front of a Redis server that can lose, for the connections open at that moment,
their replies (the requests still reach the server) or their requests (held, to be delivered late)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Link:
    """One client connection and its connection to the server."""

    client: socket.socket
    server: socket.socket
    drop_replies: bool = False
    hold_requests: bool = False
    held: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ReplyProxy:
    """Listens on 127.0.0.1 (an ephemeral port) and forwards to ``port``; new connections always pass."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._links: list[Link] = []
        self._closed = False
        self._mute_new = False
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_replies(self) -> None:
        """The connections open now lose every reply from here on; their requests still reach the server."""
        for link in list(self._links):
            link.drop_replies = True

    def drop_every_reply(self) -> None:
        """Every connection, open now or later, loses its replies (a server that takes requests and never
        answers)."""
        self._mute_new = True
        self.drop_replies()

    def hold_requests(self) -> None:
        """The connections open now lose their replies, and their requests are held (not sent) until
        :meth:`deliver_held`."""
        for link in list(self._links):
            with link.lock:
                link.drop_replies = link.hold_requests = True

    def deliver_held(self) -> int:
        """Send the held requests to the server, late; returns their bytes."""
        sent = 0
        for link in list(self._links):
            with link.lock:
                for chunk in link.held:
                    link.server.sendall(chunk)
                    sent += len(chunk)
                link.held.clear()
        return sent

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._closed = True
        self._listener.close()
        for link in self._links:
            link.client.close()
            link.server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            link = Link(client, socket.create_connection(("127.0.0.1", self._target)), drop_replies=self._mute_new)
            self._links.append(link)
            threading.Thread(target=self._requests, args=(link,), daemon=True).start()
            threading.Thread(target=self._replies, args=(link,), daemon=True).start()

    def _requests(self, link: Link) -> None:
        while True:
            try:
                chunk = link.client.recv(65536)
            except OSError:
                return
            if not chunk:
                return  # the client left; the server side stays open for held requests
            with link.lock:
                if link.hold_requests:
                    link.held.append(chunk)
                    continue
            try:
                link.server.sendall(chunk)
            except OSError:
                return

    def _replies(self, link: Link) -> None:
        while True:
            try:
                chunk = link.server.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            if link.drop_replies:
                continue
            try:
                link.client.sendall(chunk)
            except OSError:
                return
