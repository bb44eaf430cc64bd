"""A TCP proxy on loopback that can cut a worker off from Redis: a network partition without root.

While partitioned, bytes are neither read nor forwarded in either direction and new connections are
accepted but not connected upstream: the worker's requests hang exactly as across a dead link (no reset,
no close). When the partition heals, everything held is forwarded and new connections go through.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class PartitionProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``upstream_port`` until :meth:`close`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._healed = threading.Event()
        self._healed.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="partition-accept", daemon=True).start()

    def partition(self) -> None:
        """Cut the link."""
        self._healed.clear()

    def heal(self) -> None:
        """Restore the link; what was held goes through."""
        self._healed.set()

    def close(self) -> None:
        """Stop accepting and close every connection."""
        with self._lock:
            self._closed.set()
            sockets, self._sockets = self._sockets, []
        self._healed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _track(self, sock: socket.socket) -> bool:
        """Keep ``sock`` to close it with the proxy; False (and it is closed now) once the proxy is closed."""
        with self._lock:
            if not self._closed.is_set():
                self._sockets.append(sock)
                return True
        sock.close()
        return False

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        if not self._track(client):
            return
        self._healed.wait()  # a connection opened during a partition hangs until it heals
        if self._closed.is_set():
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            return  # the client socket is closed with the proxy
        upstream.settimeout(None)
        if not self._track(upstream):
            return
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while not self._closed.is_set():
            if not self._healed.is_set():  # hold: do not even read, as a dead link delivers nothing
                time.sleep(0.02)
                continue
            try:
                data = source.recv(65536)
                if not data:
                    break
                self._healed.wait()
                target.sendall(data)
            except OSError:
                break
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
