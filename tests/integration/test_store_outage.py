"""The alert store during a long hub outage: a compressed 30-minute outage (50,000 alerts; a
sensor reporting an alert every ~36 ms for half an hour) accumulates while the hub refuses
connections. Checked while offline, once a second: the agent's RSS (memory must not grow with the
backlog: the store is a log on disk and memory holds only the in-flight window) and the bytes of
the `alerts-*.log` segments in the state dir (bounded by `[queue] max_bytes`). Then the hub comes
back: every alert is delivered, first deliveries in order, nothing dropped.

The readings come over UDP, which cannot wait: a reading the kernel drops for a full socket buffer
is counted as `sourceDropped` and would make "every alert delivered" meaningless, so the sender
is paced and watches the agent's own count of received messages (its stats log line, once a
second); the test asserts that the agent received every datagram.

Upstream messages are read from the emulator's journal (`messages.jsonl`), not with `hubctl
messages`: the emulator keeps only the newest 50,000 records in memory, and re-sends after the
reconnect may push the total past that."""
import json
import re
import socket
import threading
import time
from pathlib import Path

from harness import SLOW, assert_all_in_order, reading, seqs

N = 50000 // SLOW
MAX_BYTES = 8 * 1024 * 1024
RSS_SPREAD_MAX = 4 * 1024 * 1024
# Each reading is padded so that the backlog fills about 7/8 of MAX_BYTES on disk (a record is
# its bytes and a 32-byte header): the readings alone are well over RSS_SPREAD_MAX, so a store
# that kept the backlog in memory would fail the RSS check, and under MAX_BYTES, so nothing is
# dropped.
PAD = max(0, (MAX_BYTES * 7 // 8) // N - 32 - len(reading(N)) - len(',"pad":""'))
RATE = 2000 / SLOW  # readings per second, at most
MAX_LAG = 4000 // SLOW  # readings sent but not yet received by the agent (its socket holds more)

STATS_RE = re.compile(r"stats: received (\d+), alerts accepted (\d+), sent (\d+)")


def padded(i, temp=30):
    return reading(i, temp)[:-1] + b',"pad":"' + b"x" * PAD + b'"}'


def rss_bytes(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def segment_bytes(state: Path):
    total = 0
    for p in state.glob("alerts-*.log"):
        try:
            total += p.stat().st_size
        except FileNotFoundError:  # deleted between the listing and the stat
            pass
    return total


def journal(hub):
    """Every upstream message the emulator recorded (a torn last line is still being written)."""
    path = hub.dir / "messages.jsonl"
    out = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def last_received(agent):
    m = STATS_RE.findall(agent.log())
    return int(m[-1][0]) if m else 0


class Sampler(threading.Thread):
    """RSS and segment bytes once a second until stopped."""

    def __init__(self, pid, state):
        super().__init__(daemon=True)
        self.pid, self.state = pid, state
        self.rss, self.disk = [], []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            r = rss_bytes(self.pid)
            if r is not None:
                self.rss.append(r)
            self.disk.append(segment_bytes(self.state))
            self.halt.wait(1.0)

    def stop(self):
        self.halt.set()
        self.join(5)
        self.rss.append(rss_bytes(self.pid))
        self.disk.append(segment_bytes(self.state))


def test_outage_with_50000_alerts_keeps_memory_flat_and_disk_bounded_and_loses_nothing(env):
    hub, make_agent, _ = env
    agent = make_agent(log__stats_interval=1, queue__max_bytes=MAX_BYTES)
    port = int(agent.conf.read_text().split("bind = 127.0.0.1:")[1].split()[0])
    mib = 1024 * 1024

    hub.stop()  # refuses connections from now on
    agent.wait_log("hub link: connection lost", 15 * SLOW, "the agent noticing the hub is gone")
    sampler = Sampler(agent.proc.pid, agent.state)
    sampler.start()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0 = time.monotonic()
    waits = 0
    for i in range(N):
        ahead = t0 + i / RATE - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        if i % 500 == 0 and i - last_received(agent) > MAX_LAG:
            waits += 1
            agent.wait_for(lambda: i - last_received(agent) <= MAX_LAG // 2, 30 * SLOW,
                           "the agent catching up with the sender")
        sock.sendto(padded(i), ("127.0.0.1", port))
    send_s = time.monotonic() - t0
    # A reading below the threshold: no alert, but the kernel reports drops with a datagram.
    sock.sendto(padded(N, 20), ("127.0.0.1", port))
    agent.wait_for(lambda: last_received(agent) >= N + 1, 30 * SLOW,
                   f"the agent receiving all {N + 1} datagrams")
    time.sleep(3)  # a few more samples of the full backlog
    sampler.stop()
    assert agent.proc.poll() is None
    assert "dropped by the kernel" not in agent.log()

    rss_min, rss_max = min(sampler.rss), max(sampler.rss)
    peak_disk = max(sampler.disk)
    print(f"\n{N} alerts of {len(padded(0))} bytes sent in {send_s:.1f} s ({N / send_s:.0f}/s, "
          f"{waits} catch-up waits); offline samples: {len(sampler.rss)}")
    print(f"RSS offline: min {rss_min / mib:.2f} MiB, max {rss_max / mib:.2f} MiB, "
          f"spread {(rss_max - rss_min) / 1024:.0f} KiB; RSS samples (MiB): "
          f"{[round(r / mib, 2) for r in sampler.rss[::max(1, len(sampler.rss) // 12)]]}")
    print(f"segment bytes: peak {peak_disk} ({peak_disk / mib:.2f} MiB) of max_bytes {MAX_BYTES}; "
          f"{sorted(p.name for p in agent.state.glob('alerts-*.log'))[:3]}... "
          f"({len(list(agent.state.glob('alerts-*.log')))} segments)")
    # The backlog is on disk (every alert's bytes at least), within the bound...
    assert peak_disk >= N * len(padded(0)), "the backlog is not in the segment files"
    assert N * len(padded(0)) > 1.2 * RSS_SPREAD_MAX  # so that the RSS check means something
    assert peak_disk <= MAX_BYTES
    # ...and not in memory: RSS does not grow with it.
    assert rss_max - rss_min < RSS_SPREAD_MAX, (rss_min, rss_max)

    t_back = time.monotonic()
    hub.restart()
    deadline = t_back + (90 + 120) * SLOW  # reconnect backoff (at most 60 s) + delivery
    connected_s = None
    while True:
        now = time.monotonic()
        if connected_s is None and agent.log().count("hub link: connected to") >= 2:
            connected_s = now - t_back
        got = seqs(journal(hub))
        if len(set(got)) >= N or now > deadline:
            break
        time.sleep(0.5)
    delivered_s = time.monotonic() - t_back
    reconnect = "?" if connected_s is None else f"{connected_s:.1f}"
    print(f"hub back: agent reconnected after {reconnect} s, all {len(set(got))} delivered "
          f"{delivered_s:.1f} s after the restart (upstream records {len(got)}, "
          f"duplicates {len(got) - len(set(got))})")
    assert_all_in_order(got, list(range(N)))

    def reported():
        return hub.twin()["reported"].get("agentStats", {})

    agent.wait_for(lambda: reported().get("alertsSent", 0) >= N, 30 * SLOW, "alertsSent reported")
    stats = reported()
    print("agentStats:", {k: stats.get(k) for k in (
        "messagesReceived", "sourceDropped", "alertsAccepted", "alertsSent", "alertsResent",
        "queueDepth", "queueDropped", "queueNotPersisted", "queueCorrupt", "storeCommits")})
    assert stats["messagesReceived"] == N + 1
    assert stats["sourceDropped"] == 0
    assert stats["queueDropped"] == 0
    assert stats["queueNotPersisted"] == 0
    assert stats["queueCorrupt"] == 0
    assert len(got) - len(set(got)) <= stats["alertsResent"]

    # Acknowledged segments are deleted whole: the backlog leaves the disk once delivered.
    agent.wait_for(lambda: segment_bytes(agent.state) <= 1024 * 1024 + 4096, 15 * SLOW,
                   "acknowledged segments deleted")
    print("segment bytes after delivery:", segment_bytes(agent.state))
