"""A real Ray cluster of this machine for tests: ``ray start --head`` plus worker node
processes on 127.0.0.1, each in its own process group, stopped (only they) in teardown.

Every port is chosen free, and the session folder is private, so clusters of concurrent test
runs on one machine do not meet. The cluster asks for a token of its own (``RAY_AUTH_TOKEN``
in :attr:`LocalRayCluster.env`, the environment its drivers run with), so nothing is read
from or written to ``~/.ray``. Workers find ``tests/`` (the ``helpers`` package) and the
package under test on their ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_env(**extra: str) -> dict[str, str]:
    """This process's environment for a Ray driver or node of the tests: a token of its own
    (so nothing is read from or written to ``~/.ray``), tests/ and src/ on the path."""
    return {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(SRC), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        **extra,
    }


class LocalRayCluster:
    """``with LocalRayCluster(worker_nodes=1) as cluster: ... cluster.address``."""

    def __init__(self, worker_nodes: int = 1, cpus_per_node: int = 2, env: dict | None = None):
        self.worker_nodes = worker_nodes
        self.cpus_per_node = cpus_per_node
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = Path(tempfile.mkdtemp(prefix="tjr", dir="/tmp"))
        self.env = ray_env(**(env or {}))
        self.processes: list[subprocess.Popen] = []

    def _ray(self, *args: str, log: str) -> subprocess.Popen:
        ray = Path(sys.executable).with_name("ray")
        with open(self.temp / log, "wb") as stream:
            process = subprocess.Popen(
                [
                    str(ray),
                    "start",
                    "--block",
                    "--disable-usage-stats",
                    "--node-ip-address=127.0.0.1",
                    f"--num-cpus={self.cpus_per_node}",
                    "--object-store-memory=200000000",
                    f"--dashboard-agent-listen-port={free_port()}",
                    f"--metrics-export-port={free_port()}",
                    *args,
                ],
                stdout=stream,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def start(self) -> LocalRayCluster:
        try:
            self._start()
        except BaseException:
            self.stop(keep_logs=True)
            raise
        return self

    def _start(self) -> None:
        self._ray(
            "--head",
            f"--port={self.port}",
            f"--temp-dir={self.temp}",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
            log="head.log",
        )
        for index in range(self.worker_nodes):  # they wait for the head to come up
            self._ray(f"--address={self.address}", log=f"worker{index}.log")
        self._wait_nodes(1 + self.worker_nodes)

    def _wait_nodes(self, count: int, timeout: float = 90.0) -> None:
        script = (
            "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR');"
            "print(sum(1 for n in ray.nodes() if n['Alive']))"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"ray start exited: see {self.temp}")
            result = subprocess.run(
                [sys.executable, "-c", script, self.address],
                check=False,
                capture_output=True,
                text=True,
                env=self.env,
                timeout=30,
            )
            if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1.0)
        raise RuntimeError(f"the Ray cluster did not reach {count} nodes: see {self.temp}")

    def worker_pids(self, marker: str) -> list[int]:
        """Processes of this cluster whose command line contains ``marker``."""
        ours = {p.pid for p in self.processes}
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if marker in cmdline and _ancestor_in(int(entry.name), ours):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def stop(self, keep_logs: bool = False) -> None:
        """Stop the nodes (their process groups only); remove the session folder unless
        ``keep_logs`` (a cluster that failed to start names it in its error)."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the group of this `ray start` only
            except ProcessLookupError:
                pass
            process.wait()
        if not keep_logs:
            shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ancestor_in(pid: int, ancestors: set[int]) -> bool:
    for _ in range(12):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        parent = int(next(l for l in status.splitlines() if l.startswith("PPid:")).split()[1])
        if parent in ancestors:
            return True
        if parent <= 1:
            return False
        pid = parent
    return False
