"""What runs on this machine: processes and ports of embedded servers, and the user's list of those that run
(pid, port, data directory; no password), so that ``taskplane redis status`` shows every one, whichever
project started it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from taskplane.core.settings import user_state_dir


@dataclass(frozen=True)
class RunningServer:
    """An embedded server that runs, as the user's list of them names it."""

    pid: int
    port: int
    data_dir: str


def server_listing() -> Path:
    """The directory of the user's list of running embedded servers."""
    return user_state_dir() / "servers"


def running_servers(listing: Path | None = None) -> list[RunningServer]:
    """Every embedded server of this user that runs (entries of servers that stopped are dropped)."""
    listing = listing or server_listing()
    found = []
    for entry in sorted(listing.glob("*.json")) if listing.is_dir() else []:
        try:
            server = RunningServer(**json.loads(entry.read_text()))
        except (OSError, ValueError, TypeError):
            server = None
        if server is not None and pid_runs(server.pid, server.port):
            found.append(server)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
    return found


def pid_runs(pid: int, port: int) -> bool:
    """True if ``pid`` is alive and is our server (its process title names our port)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    if ") Z" in stat:  # a zombie has exited
        return False
    return f"127.0.0.1:{port}".encode() in cmdline


def own_local_ports() -> set[int] | None:
    """The local TCP ports of this process's IPv4 sockets (Linux's /proc), or None without /proc."""
    try:
        inodes = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        lines = Path("/proc/self/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    ports = set()
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and fields[9] in inodes:
            ports.add(int(fields[1].rpartition(":")[2], 16))
    return ports


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """True if the server could listen on ``port`` now. It binds with SO_REUSEADDR, so connections of
    its previous run left in TIME-WAIT do not hold the port: probe the same way."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
