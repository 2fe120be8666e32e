"""Real processes for fault tests: a private redis-server, `ledgerflow serve` and workers.

Every process is started here, tracked by pid, and ended by pid at teardown; nothing else
on the machine is touched. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from redis import Redis

from tests.integration.conftest import free_port


class Processes:
    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.started: list[subprocess.Popen[bytes]] = []
        self.redis_port = free_port()
        self.redis: subprocess.Popen[bytes] | None = None

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with open(self.log_dir / f"{name}-{len(self.started)}.log", "wb") as log:
            process = subprocess.Popen(
                args, env=env or self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.started.append(process)
        return process

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self) -> None:
        """A redis-server of this test's own that keeps nothing on disk."""
        self.redis = self._spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.log_dir),
            ],
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                Redis.from_url(self.redis_url, socket_connect_timeout=0.5).ping()
                return
            except Exception:  # noqa: BLE001 - not up yet
                assert time.monotonic() < deadline, "private redis-server did not start"
                time.sleep(0.05)

    def kill_redis(self) -> None:
        assert self.redis is not None
        self.kill(self.redis)

    def start_api(self, **settings: str) -> str:
        """`ledgerflow serve` on a free port; `settings` become extra LEDGERFLOW_* variables."""
        port = free_port()
        command = [sys.executable, "-m", "ledgerflow", "serve", "--host", "127.0.0.1"]
        self._spawn(
            "api",
            [*command, "--port", str(port)],
            env=self.env | {f"LEDGERFLOW_{k.upper()}": v for k, v in settings.items()},
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "ledgerflow serve did not start within 20 s"
            time.sleep(0.1)

    def start_worker(self) -> subprocess.Popen[bytes]:
        return self._spawn("worker", [sys.executable, "-m", "ledgerflow", "worker"])

    def kill(self, process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        if process.poll() is None:
            os.kill(process.pid, sig)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill(process)
