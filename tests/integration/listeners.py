"""Which TCP ports the standalone's processes listen on, and at which address (from /proc)."""

from __future__ import annotations

import os
from pathlib import Path

# 127.0.0.1, ::1 and ::ffff:127.0.0.1 as /proc/net/tcp{,6} write them
LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
# The standalone takes no bind address for these (deploy/pulsar-standalone.sh's ports).
UNBINDABLE = {int(os.environ.get("PULSAR_ZK_PORT", "2181")): "ZooKeeper",
              int(os.environ.get("PULSAR_STATE_PORT", "4181")): "table service"}
BOOKIE_PORT = int(os.environ.get("PULSAR_BOOKIE_PORT", "3181"))


def standalone_pids() -> list[int]:
    """The JVM and the Python function instances of the installed distribution."""
    dist = os.environ.get("PULSAR_DIST", "").rstrip("/") or "apache-pulsar-"
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if dist in args and ("java" in args or "python_instance_main" in args):
            pids.append(int(entry.name))
    return pids


def port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[-1])


def listening(pids: list[int]) -> dict[int, str]:
    """Port -> hex local address of every listening socket the processes hold."""
    inodes = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    found: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                address, port = fields[1].split(":")
                found[int(port, 16)] = address
    return found


def open_ports(pids: list[int]) -> dict[int, str]:
    """The ports among ``listening`` that accept connections from beyond the machine."""
    return {port: address for port, address in listening(pids).items() if address not in LOOPBACK}
