"""The benchmark finds the API by the socket it listens on, even while it is busy."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from benchmarks import cpu


def test_the_listening_process_is_found_while_its_other_descriptors_come_and_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server scanned while it closes connections: a descriptor listed a moment ago is
    gone when read. That must not hide the listening socket behind it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        real_readlink = os.readlink
        mine = Path(f"/proc/{os.getpid()}/fd")
        descriptors = sorted(mine.iterdir(), key=lambda fd: int(fd.name))
        closed = {str(fd) for fd in descriptors if int(fd.name) < listener.fileno()}
        assert closed, "some descriptor is listed before the listening one"

        def racing_readlink(path: str | os.PathLike[str]) -> str:
            if str(path) in closed:
                raise FileNotFoundError(path)
            return real_readlink(path)

        monkeypatch.setattr(cpu.os, "readlink", racing_readlink)
        assert os.getpid() in cpu.listening_pids(port)
