"""Shared by the integration tests: harness.py on the path, and `env`: an emulator, agents with a
UDP sensor source, and a sender of numbered readings (a test module may define its own `env`)."""
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Agent, Hub, fresh_work, free_udp_port, reading  # noqa: E402


@pytest.fixture
def env(request):
    work = fresh_work(request.node.name)
    hub = Hub(work).start()
    udp_port = free_udp_port()
    agents = []

    def make_agent(start=True, **kw):
        kw.setdefault("source__type", "udp")
        kw.setdefault("source__bind", f"127.0.0.1:{udp_port}")
        a = Agent(work, hub, **kw)
        agents.append(a)
        return a.start() if start else a

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(i, temp=30):
        sock.sendto(reading(i, temp), ("127.0.0.1", udp_port))
        time.sleep(0.01)

    yield hub, make_agent, send
    for a in agents:
        a.stop()
    hub.stop()


@pytest.fixture
def module_env(request):
    """An emulator and agents with the default module identity and module input."""
    work = fresh_work(request.node.name)
    hub = Hub(work).start()
    agents = []

    def make_agent(start=True, **kw):
        a = Agent(work, hub, **kw)
        agents.append(a)
        return a.start() if start else a

    yield hub, make_agent
    for a in agents:
        a.stop()
    hub.stop()
