"""What runs on this machine: a free port, a port someone listens on, a live broker process,
a broker that answers a metadata request."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_taken(port: int) -> bool:
    """Whether binding ``port`` fails (someone listens on it or holds it bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT leftovers
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def broker_alive(pid: int) -> bool:
    """Whether ``pid`` runs a Kafka broker (not a zombie, not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no procfs: trust the signal check
    if state in ("Z", "X"):
        return False
    return not cmdline or b"kafka.Kafka" in cmdline  # no cmdline: still exiting (files held)


def _run_async(make_coro) -> object:
    """Run ``make_coro()`` to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


async def _metadata_ok(bootstrap: str, timeout_s: float) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    timeout_ms = max(1000, int(timeout_s * 1000))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return bool(cluster.get("brokers"))
    except Exception:  # noqa: BLE001 - not ready yet, the caller retries
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def answers_metadata(bootstrap: str, timeout_s: float) -> bool:
    return bool(_run_async(lambda: _metadata_ok(bootstrap, timeout_s)))
