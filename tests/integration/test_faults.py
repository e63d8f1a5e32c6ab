"""Network faults between the agent and the hub, injected by our TCP proxy (faultproxy.py): a
connection reset inside a TLS record while alerts flow, a silent peer that only keep-alive can
detect, connections reset during the TLS handshake. The agent reaches the emulator through the
proxy ([hub] port = proxy port; the host stays localhost, so the certificate check still passes).
The sensor source is UDP so readings keep arriving while the link is down."""
import socket
import struct
import threading
import time
from types import SimpleNamespace

import pytest

from faultproxy import FaultProxy
from harness import (SLOW, Agent, Hub, assert_all_in_order, fresh_work, free_udp_port, reading,
                     seqs)

CONNECTED = "hub link: connected to"
LOST = "hub link: connection lost"
CONNECT_FAILED = "hub link: connect to"  # "hub link: connect to HOST:PORT failed: ..."
KEEPALIVE = 10  # the smallest [hub] keepalive the conf accepts


@pytest.fixture
def env(request):
    work = fresh_work(request.node.name)
    hub = Hub(work).start()
    proxy = FaultProxy(hub.port).start()
    udp_port = free_udp_port()
    agents = []
    clocks = []

    def make_agent(start=True, **kw):
        kw.setdefault("hub__port", proxy.port)
        kw.setdefault("source__type", "udp")
        kw.setdefault("source__bind", f"127.0.0.1:{udp_port}")
        a = Agent(work, hub, **kw)
        a.clock = LogClock(a)
        agents.append(a)
        clocks.append(a.clock)
        return a.start() if start else a

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(i, temp=30, gap=0.01):
        sock.sendto(reading(i, temp), ("127.0.0.1", udp_port))
        time.sleep(gap)

    yield SimpleNamespace(hub=hub, proxy=proxy, make_agent=make_agent, send=send)
    for a in agents:
        a.stop()
    for c in clocks:
        c.close()
    sock.close()
    proxy.close()
    hub.stop()


class LogClock:
    """Stamps each agent log line with the time.monotonic() it first appeared (the log has no
    timestamps), from a thread polling the file every 20 ms, so measurements do not depend on
    what the test thread was doing meanwhile."""

    def __init__(self, agent):
        self.agent = agent
        self.lines = []  # (time.monotonic(), line)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="logclock", daemon=True)
        self._thread.start()

    def _run(self):
        seen = 0
        while not self._stop.wait(0.02):
            text = self.agent.log()
            end = text.rfind("\n") + 1
            now = time.monotonic()
            for line in text[seen:end].splitlines():
                self.lines.append((now, line))
            seen = max(seen, end)

    def times(self, needle):
        return [t for t, line in list(self.lines) if needle in line]

    def wait(self, needle, n, timeout, what):
        """Waits until needle occurs in at least n lines; returns when the n-th appeared."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stamps = self.times(needle)
            if len(stamps) >= n:
                return stamps[n - 1]
            if self.agent.proc.poll() is not None:
                raise AssertionError(f"agent exited ({self.agent.proc.returncode}) waiting for "
                                     f"{what}:\n" + self.agent.log()[-3000:])
            time.sleep(0.05)
        raise AssertionError(f"timed out ({timeout} s) waiting for {what}; agent log:\n"
                             + self.agent.log()[-3000:])

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)


def wait_alerts(hub, agent, expected, timeout):
    """Waits until every expected alert was recorded upstream; returns the recorded seqs."""
    deadline = time.monotonic() + timeout
    hub.messages(wait_count=len(expected), timeout=timeout)  # may return early on duplicates
    got = []

    def complete():
        got[:] = seqs(hub.messages())
        return set(expected) <= set(got)

    agent.wait_for(complete, max(5, deadline - time.monotonic()),
                   f"{len(expected)} alerts upstream")
    return got


def report(name, value):
    print(f"\nMEASURED {name}: {value:.2f} s")


# -- the proxy itself, without the agent: what the agent tests rely on --

def _server():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(5)
    return srv


def _record(body, ctype=23):
    return struct.pack("!BBBH", ctype, 3, 3, len(body)) + body


def _pair(proxy, srv):
    cli = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    peer, _ = srv.accept()
    peer.settimeout(5)
    return cli, peer


def _recv_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def test_proxy_forwards_cuts_inside_a_record_blackholes_and_refuses():
    srv = _server()
    proxy = FaultProxy(srv.getsockname()[1]).start()
    try:
        # pass: byte-exact both ways, records followed across chunk boundaries
        cli, peer = _pair(proxy, srv)
        up = _record(b"a" * 300) + _record(b"b" * 7)
        for k in range(0, len(up), 50):  # chunks that split headers and bodies
            cli.sendall(up[k:k + 50])
            time.sleep(0.005)
        assert _recv_exactly(peer, len(up)) == up
        down = _record(b"c" * 40, ctype=22)
        peer.sendall(down)
        assert _recv_exactly(cli, len(down)) == down

        # cut server -> client: header + 3 body bytes of the next record, then RST both ways
        proxy.cut_mid_record("s2c", body_bytes=3)
        rec = _record(b"d" * 100)
        peer.sendall(rec)
        assert proxy.wait_cut(5)
        assert proxy.last_cut == ("s2c", 23, 100, 3)
        assert _recv_exactly(cli, 8) == rec[:8]
        with pytest.raises(ConnectionResetError):
            while cli.recv(100):  # nothing more than the 8 bytes, then the reset
                raise AssertionError("bytes after the cut")
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            for _ in range(50):  # bounded: the reset reaches the server side too
                peer.sendall(b"x" * 1000)
                time.sleep(0.02)
        cli.close()
        peer.close()

        # blackhole: open connections stay open, nothing passes, no close is passed on
        cli, peer = _pair(proxy, srv)
        cli.sendall(_record(b"e"))
        assert _recv_exactly(peer, 6) == _record(b"e")
        proxy.blackhole()
        cli.sendall(_record(b"f" * 20))
        peer.sendall(_record(b"g" * 20))
        peer.close()  # the server gives up: the client must not learn of it
        cli.settimeout(1.0)
        with pytest.raises(socket.timeout):
            cli.recv(100)
        peer2 = None
        srv.settimeout(1.0)
        try:
            peer2, _ = srv.accept()  # nothing new was forwarded either
        except socket.timeout:
            pass
        assert peer2 is None
        st = proxy.stats()
        assert st["dropped_c2s"] == 25 and st["blackholed"] == 1, st
        cli.close()

        # back to pass: new connections work again
        proxy.passthrough()
        srv.settimeout(5)
        cli, peer = _pair(proxy, srv)
        cli.sendall(_record(b"h"))
        assert _recv_exactly(peer, 6) == _record(b"h")
        cli.close()
        peer.close()

        # refuse: the first bytes (a ClientHello) are read, then the connection is reset
        proxy.refuse_new(True)
        cli = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        cli.sendall(_record(b"hello", ctype=22))
        with pytest.raises(ConnectionResetError):
            cli.recv(100)
        cli.close()
        st = proxy.stats()
        assert st["refused"] == 1 and st["hello_before_reset"] == 1 and st["cuts"] == 1, st
        assert st["bad_headers"] == 0, st
    finally:
        proxy.close()
        srv.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("faultproxy")]


# -- the agent through the proxy --

@pytest.mark.parametrize("direction", ["s2c", "c2s"])
def test_cut_inside_a_tls_record_while_alerts_flow_loses_nothing(env, direction):
    agent = env.make_agent(log__stats_interval=1)
    assert agent.log().count(CONNECTED) == 1
    for i in range(40):
        env.send(i)
    env.proxy.cut_mid_record(direction, body_bytes=3)  # alerts are flowing: the next record
    for i in range(40, 100):
        env.send(i)
    assert env.proxy.wait_cut(10 * SLOW), "no record crossed the proxy after the cut was armed"
    d, ctype, length, body = env.proxy.last_cut
    assert d == direction and ctype == 23 and body < length, env.proxy.last_cut
    lost_at = agent.clock.wait(LOST, 1, 30 * SLOW, "the cut detected")
    up_at = agent.clock.wait(CONNECTED, 2, 60 * SLOW, "reconnect after the cut")
    report(f"cut {direction}: detection", lost_at - env.proxy.cut_time)
    report(f"cut {direction}: reconnect", up_at - env.proxy.cut_time)
    got = wait_alerts(env.hub, agent, list(range(100)), 60 * SLOW)
    assert_all_in_order(got, list(range(100)))
    assert agent.proc.poll() is None
    # Every duplicate the hub saw is a re-send the agent counted (paho re-sends nothing itself).
    agent.wait_for(lambda: env.hub.twin()["reported"]["agentStats"]["alertsSent"] >= 100,
                   30 * SLOW, "alertsSent reported")
    resent = env.hub.twin()["reported"]["agentStats"]["alertsResent"]
    print(f"\nMEASURED cut {direction}: duplicates upstream {len(got) - len(set(got))}, "
          f"re-sends counted by the agent {resent}")
    assert len(got) - len(set(got)) <= resent
    st = env.proxy.stats()
    assert st["cuts"] == 1 and st["accepted"] >= 2 and st["bad_headers"] == 0, st


def test_silent_peer_is_detected_by_keepalive_and_alerts_sent_into_it_survive(env):
    agent = env.make_agent(hub__keepalive=KEEPALIVE)
    for i in range(10):
        env.send(i)
    # All acknowledged: the agent has just received from the hub when the silence starts.
    wait_alerts(env.hub, agent, list(range(10)), 30 * SLOW)
    assert agent.log().count(LOST) == 0
    env.proxy.blackhole()
    t0 = time.monotonic()
    deadline = t0 + 60 * SLOW
    i = 10
    next_send = t0
    # Readings keep coming while the hub is silent (one every 0.5 s, at most 40): the agent sends
    # alerts into the void until its window is full, which must not hide the silence.
    while not agent.clock.times(LOST) and time.monotonic() < deadline:
        assert agent.proc.poll() is None, agent.log()[-3000:]
        if time.monotonic() >= next_send and i < 50:
            env.send(i)
            i += 1
            next_send += 0.5
        time.sleep(0.05)
    lost = agent.clock.times(LOST)
    assert len(lost) == 1, "silent peer not detected within %d s:\n%s" % (
        60 * SLOW, agent.log()[-3000:])
    detected = lost[0] - t0
    report("silent peer: detection after blackhole", detected)
    assert agent.log().count(CONNECTED) == 1, "connected through a blackhole?"
    st = env.proxy.stats()
    assert st["dropped_c2s"] > 0, st  # alerts (and a PINGREQ) really went into the void
    env.proxy.passthrough()
    t1 = time.monotonic()
    # A connect the agent started during the blackhole hangs in its TLS handshake until paho's
    # 30 s connect timeout; the bound covers that plus the backoff.
    up_at = agent.clock.wait(CONNECTED, 2, 60 * SLOW, "reconnect once the peer answers again")
    report("silent peer: reconnect after passthrough", up_at - t1)
    print(f"connections blackholed (the silent one included): {env.proxy.stats()['blackholed']}")
    got = wait_alerts(env.hub, agent, list(range(i)), 60 * SLOW)
    assert_all_in_order(got, list(range(i)))
    assert agent.proc.poll() is None
    # paho 1.3: a PINGREQ once nothing was received for keepalive s, the link given up once
    # the PINGRESP is 1.5 x keepalive late; checked about once a second.
    assert KEEPALIVE <= detected <= 2.5 * KEEPALIVE + 5 * SLOW, detected


def test_resets_during_the_tls_handshake_back_off_then_connect(env):
    env.proxy.refuse_new(True)
    agent = env.make_agent(start=False)
    agent.start(wait_online=False)
    agent.wait_log("started:", 30 * SLOW)  # logged once the UDP source is bound
    for i in range(20):
        env.send(i)  # stored while the agent cannot connect
    agent.wait_for(lambda: env.proxy.stats()["refused"] >= 4, 60 * SLOW, "4 refused connects")
    # The next attempt gets a reset in the middle of the server's first handshake record (armed
    # first: a refused connection forwards nothing, so it cannot take the cut).
    env.proxy.cut_mid_record("s2c", body_bytes=3)
    env.proxy.refuse_new(False)
    assert env.proxy.wait_cut(90 * SLOW), "no further connect attempt"
    d, ctype, length, body = env.proxy.last_cut
    assert ctype == 22 and body < length, env.proxy.last_cut  # a handshake record (ServerHello)
    agent.clock.wait(CONNECTED, 1, 90 * SLOW, "connect after the resets")
    got = wait_alerts(env.hub, agent, list(range(20)), 60 * SLOW)
    assert_all_in_order(got, list(range(20)))
    st = env.proxy.stats()
    assert st["hello_before_reset"] == st["refused"], st  # each reset hit a TLS handshake
    log = agent.log()
    failures = log.count(CONNECT_FAILED)
    assert failures >= st["refused"] + 1, (failures, st)  # every reset was seen as a failure
    assert log.count(CONNECTED) == 1 and agent.proc.poll() is None
    # Exponential backoff with full jitter: attempt n waits at most min(60 s, 2^(n-1) s).
    attempts = []
    for line in log.splitlines():
        if "next connect attempt in" in line:
            ms = int(line.split("next connect attempt in ")[1].split(" ms")[0])
            n = int(line.split("(attempt ")[1].rstrip(")"))
            attempts.append(n)
            assert 100 <= ms <= min(60000, 1000 * 2 ** (n - 1)), line
    assert attempts == list(range(1, len(attempts) + 1)) and len(attempts) >= 5, attempts


def test_repeated_cuts_while_alerts_stream_fast_lose_nothing(env):
    """Resets while readings stream without pause (one every ~3 ms, also while reconnecting), so
    the agent queues publishes right up to the moment paho fails them. 4 agent runs x 3 cuts: a
    restart resets the backoff, which grows with every short-lived connection.

    Regression test: with libpaho-mqtt3as 1.3.12, a reset that hits a PUBLISH being written
    (agent log "alert N not acknowledged (paho code -1)") left paho holding a corrupt copy for
    the session retry: the hub closed every new connection ("disconnected due to malformed
    packet") and no alert was delivered any more (1 run in 3), and ASan saw a
    heap-use-after-free. The agent now makes a fresh paho client after every lost connection
    and re-sends from its own store."""
    agent = env.make_agent(start=False, queue__max_bytes=16 << 20)  # nothing may be dropped
    sent = [0]
    for life in range(4):
        before = len(agent.clock.times(CONNECTED))
        # (the agentStats that start() waits for are still there from the previous run)
        agent.start(wait_online=False)
        agent.clock.wait(CONNECTED, before + 1, 30 * SLOW, f"run {life + 1}: connected")
        stop = threading.Event()

        def stream():
            deadline = time.monotonic() + 60 * SLOW
            while not stop.is_set() and time.monotonic() < deadline:
                env.send(sent[0], gap=0.003)
                sent[0] += 1

        streamer = threading.Thread(target=stream, name="stream", daemon=True)
        streamer.start()
        try:
            for r in range(3):
                what = f"run {life + 1}, cut {r + 1}"
                connects = len(agent.clock.times(CONNECTED))
                time.sleep(0.5)  # alerts flowing on this connection
                env.proxy.cut_mid_record("c2s", body_bytes=3)
                assert env.proxy.wait_cut(10 * SLOW), f"{what}: no cut"
                agent.clock.wait(CONNECTED, connects + 1, 60 * SLOW, f"{what}: reconnect")
        finally:
            stop.set()
            streamer.join(timeout=5)
        wait_alerts(env.hub, agent, list(range(sent[0])), 60 * SLOW)
        assert agent.stop() == 0, agent.log()[-3000:]
    expected = list(range(sent[0]))
    assert_all_in_order(seqs(env.hub.messages()), expected)
