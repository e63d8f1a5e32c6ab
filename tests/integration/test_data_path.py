"""The data path under load: the module input at full QoS 1 speed (group commit), a store too
small for the burst (backpressure: inputs wait unacknowledged, nothing is lost), and SIGKILL in the
middle of a stream of group commits. Real agent, real mosquitto with the emulator plugin, TLS."""
import json
import random
import signal
import struct
import sys
import threading
import time

import pytest

from harness import EMU, SLOW, Agent, Hub, assert_all_in_order, fresh_work, seqs, wait_for_all

sys.path.insert(0, str(EMU))
import hubemu_lib as lib  # noqa: E402

SENSOR = "edgedev/tempSensor"
TOPIC = ("devices/edgedev/modules/tempSensor/messages/events/%24.ct=application%2Fjson&"
         "%24.ce=utf-8&%24.on=temperatureOutput")


@pytest.fixture
def hub(request):
    work = fresh_work(request.node.name)
    h = Hub(work).start()
    h.work = work
    yield h
    h.stop()


class Sensor:
    """The simulated temperature sensor module, publishing QoS 1 as fast as the broker acks."""

    def __init__(self, hub):
        self.c = lib.connect_identity(str(hub.dir), SENSOR, timeout=30)
        self.acked = 0
        self.mid = 0

    def publish(self, bodies, window=100, timeout=120):
        """Publishes with up to `window` unacknowledged; returns the time taken."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        outstanding = 0
        for b in bodies:
            self.mid = self.mid % 65535 + 1
            self.c._send(0x32, lib._enc_str(TOPIC) + struct.pack("!H", self.mid) + b)
            outstanding += 1
            while outstanding >= window:
                outstanding -= self._pubacks(deadline)
        while outstanding > 0:
            outstanding -= self._pubacks(deadline)
        return time.monotonic() - t0

    def _pubacks(self, deadline):
        if time.monotonic() > deadline:
            raise AssertionError("the broker stopped acknowledging the sensor")
        ptype, _ = self.c._read_packet(deadline)
        if ptype == 4:
            self.acked += 1
            return 1
        return 0

    def close(self):
        self.c.disconnect()


def readings(n, hot_share, seed):
    rnd = random.Random(seed)
    hot = []
    bodies = []
    for i in range(n):
        t = 30 if rnd.random() < hot_share else 20
        if t > 25:
            hot.append(i)
        bodies.append(('{"machine":{"temperature":%d},"seq":%d}' % (t, i)).encode())
    return bodies, hot


def stats(hub):
    return hub.twin().get("reported", {}).get("agentStats", {})


def test_burst_at_full_qos1_speed_every_hot_reading_arrives_in_order(hub):
    n = 20000 // SLOW
    bodies, hot = readings(n, 0.6, 1)
    agent = Agent(hub.work, hub, log__stats_interval=2).start()
    sensor = Sensor(hub)
    took = sensor.publish(bodies, timeout=300)
    print(f"{n} readings acknowledged by the broker in {took:.1f} s")
    msgs = wait_for_all(hub, hot, 240 * SLOW)
    assert_all_in_order(seqs(msgs), hot)
    agent.wait_for(lambda: stats(hub).get("messagesReceived", 0) >= n, 30 * SLOW, "all counted")
    s = stats(hub)
    print("agentStats:", json.dumps(s))
    assert s["alertsAccepted"] >= len(hot) and s["queueDropped"] == 0
    # Group commit: far fewer syncs than alerts in a burst.
    assert 0 < s["storeCommits"] < s["alertsAccepted"], s
    sensor.close()
    assert agent.stop() == 0


def test_store_too_small_for_the_burst_applies_backpressure_and_loses_nothing(hub):
    n = 4000 // SLOW
    bodies, hot = readings(n, 0.6, 2)
    # One alert in flight at a time: the hub drains the store slower than the sensor fills it.
    agent = Agent(hub.work, hub, queue__max_bytes=8192, hub__max_inflight=1,
                  log__stats_interval=2).start()
    sensor = Sensor(hub)
    sensor.publish(bodies, timeout=300 * SLOW)
    msgs = wait_for_all(hub, hot, 300 * SLOW)
    assert_all_in_order(seqs(msgs), hot)
    agent.wait_for(lambda: stats(hub).get("messagesReceived", 0) >= n, 60 * SLOW, "all counted")
    s = stats(hub)
    print("agentStats:", json.dumps(s))
    assert s["queueDropped"] == 0, s
    assert s["inputsWaited"] > 0, "the small store never made an input wait?"
    sensor.close()
    assert agent.stop() == 0


def test_sigkill_during_group_commits_loses_no_acknowledged_reading(hub):
    n = 3000 // SLOW
    bodies, hot = readings(n, 0.5, 3)
    agent = Agent(hub.work, hub).start()
    sensor = Sensor(hub)
    done = threading.Event()

    def publish():
        try:
            sensor.publish(bodies, timeout=300 * SLOW)
        finally:
            done.set()
    th = threading.Thread(target=publish)
    th.start()
    rnd = random.Random(4)
    kills = 0
    for _ in range(3):
        if done.is_set():
            break
        time.sleep(rnd.uniform(0.3, 1.5) * SLOW)
        agent.stop(sig=signal.SIGKILL)
        kills += 1
        agent = Agent(hub.work, hub).start(wait_online=False)
    th.join(400 * SLOW)
    assert sensor.acked == n
    print(f"{kills} SIGKILLs while {n} readings streamed")
    msgs = wait_for_all(hub, hot, 240 * SLOW)
    got = seqs(msgs)
    assert sorted(set(got)) == hot, f"missing {sorted(set(hot) - set(got))[:20]}"
    sensor.close()
    assert agent.stop() == 0
