"""Free ports are picked where outgoing connections cannot take them first."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from launcher import processes
from launcher.processes import ephemeral_port_range, free_port


def test_the_ephemeral_range_is_read_from_the_kernel_file(tmp_path: Path) -> None:
    path = tmp_path / "ip_local_port_range"
    path.write_text("40000\t50000\n")
    assert ephemeral_port_range(path) == (40000, 50000)
    assert ephemeral_port_range(tmp_path / "missing") == (32768, 60999)


def test_free_ports_lie_outside_the_ephemeral_range_and_can_be_bound() -> None:
    low, high = ephemeral_port_range()
    for _ in range(50):
        port = free_port()
        assert not low <= port <= high
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        # The only spare port is the held one: the pick falls back to one the kernel finds.
        monkeypatch.setattr(processes, "LOWEST_PICKED_PORT", taken)
        monkeypatch.setattr(processes, "ephemeral_port_range", lambda: (taken + 1, 65535))
        assert free_port() != taken
