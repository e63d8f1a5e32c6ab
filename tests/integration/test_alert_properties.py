"""Alerts as the seed forwards them: the input's application properties and $.mid/$.cid travel
with the alert, MessageType is replaced, and an input without $.mid gets a message id that is the
same on every re-send (after a lost PUBACK and reconnect, and after SIGKILL and a restart).
Real agent, real mosquitto with the emulator plugin, TLS."""
import re
import signal
import socket
from types import SimpleNamespace
from urllib.parse import unquote

import pytest

from faultproxy import FaultProxy
from harness import MODULE, SLOW, Agent, Hub, fresh_work, free_udp_port, reading

GA_ID = re.compile(r"^ga-[0-9a-f]{16}-[0-9]+$")


@pytest.fixture
def env(request):
    work = fresh_work(request.node.name)
    hub = Hub(work).start()
    proxy = FaultProxy(hub.port).start()
    udp_port = free_udp_port()
    agents = []

    def make_agent(start=True, **kw):
        a = Agent(work, hub, **kw)
        agents.append(a)
        return a.start() if start else a

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send_udp(i, temp=30):
        sock.sendto(reading(i, temp), ("127.0.0.1", udp_port))

    yield SimpleNamespace(hub=hub, proxy=proxy, udp_port=udp_port, make_agent=make_agent,
                          send_udp=send_udp, work=work)
    for a in agents:
        a.stop()
    sock.close()
    proxy.close()
    hub.stop()


def body(t, n=0):
    return '{"machine":{"temperature":%s},"n":%d}' % (t, n)


def send_input(hub, text, props):
    args = ["send-input", MODULE, "input1", "--body", text]
    for k, v in props:
        args += ["--prop", f"{k}={v}"]
    hub.ctl(*args)


def topic_keys(msg):
    """The decoded property names in the order the agent put them in the topic."""
    bag = msg["topic"].split("/messages/events/", 1)[1]
    return [unquote(item.split("=", 1)[0]) for item in bag.split("&") if item]


def alerts(msgs):
    return [m for m in msgs if m.get("properties", {}).get("MessageType") == "Alert"]


def test_input_properties_travel_with_the_alert_byte_for_byte(env):
    env.make_agent()
    props = [("sequenceNumber", "17"), ("batchId", "0f8fad5b-d9cb-469f-a165-70867728950e"),
             ("a b&c/ü", "x&y=z/ü %20+"), ("$.mid", "sensor-msg:42"), ("$.cid", "corr/7 ü"),
             ("MessageType", "Reading"), ("$.to", "/devices/x"), ("$.uid", "someone"),
             ("empty", "")]
    send_input(env.hub, body(30, 1), props)
    # An input with its own content type keeps it; the agent adds only what is missing.
    send_input(env.hub, body(31, 2), [("k", "v"), ("$.ct", "text/plain"), ("$.ce", "utf-16")])
    got = alerts(env.hub.messages(wait_count=2, timeout=30 * SLOW))
    assert [m["body"] for m in got] == [body(30, 1), body(31, 2)]

    p = got[0]["properties"]
    for k, v in props:
        if k in ("sequenceNumber", "batchId", "a b&c/ü", "$.mid", "$.cid", "empty"):
            assert p[k] == v, (k, p)
    assert p["MessageType"] == "Alert"
    assert p["$.on"] == "output1"
    assert p["$.ct"] == "application/json" and p["$.ce"] == "utf-8"
    # The input hop's system properties are not ours to claim.
    for k in ("$.to", "$.uid", "$.cdid", "$.cmid"):
        assert k not in p, (k, p)
    # The input's order, then the added ones.
    assert topic_keys(got[0]) == ["sequenceNumber", "batchId", "a b&c/ü", "$.mid", "$.cid",
                                  "empty", "$.on", "$.ct", "$.ce", "MessageType"]

    p2 = got[1]["properties"]
    assert p2["k"] == "v" and p2["$.ct"] == "text/plain" and p2["$.ce"] == "utf-16"
    assert GA_ID.match(p2["$.mid"]), p2
    assert topic_keys(got[1]) == ["k", "$.ct", "$.ce", "$.on", "MessageType", "$.mid"]


def test_a_bag_that_cannot_be_forwarded_is_a_counted_rejection(env):
    agent = env.make_agent()
    # IoT Hub takes no space in a message id: the alert could never be sent, so the input is
    # rejected (acknowledged, counted) instead of stored.
    send_input(env.hub, body(40, 1), [("$.mid", "has space")])
    send_input(env.hub, body(41, 2), [("$.mid", "fine")])
    got = alerts(env.hub.messages(wait_count=1, timeout=30 * SLOW))
    assert [m["body"] for m in got] == [body(41, 2)]
    assert got[0]["properties"]["$.mid"] == "fine"
    agent.wait_log("rejected as bad_properties so far", 10 * SLOW)
    # Counted in agentStats under rejected (reported at connect: reconnect to see it).
    env.hub.ctl("drop", MODULE)
    agent.wait_for(lambda: env.hub.twin()["reported"].get("agentStats", {})
                   .get("rejected", {}).get("bad_properties") == 1, 30 * SLOW,
                   "bad_properties counted in agentStats")


def test_generated_message_id_is_the_same_on_every_resend(env):
    kw = dict(hub__port=env.proxy.port, source__type="udp",
              source__bind=f"127.0.0.1:{env.udp_port}")
    agent = env.make_agent(**kw)
    env.send_udp(1)
    first = alerts(env.hub.messages(wait_count=1, timeout=30 * SLOW))
    assert len(first) == 1
    store_id = (env.work / "state" / "store-id").read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{16}", store_id)
    mid1 = first[0]["properties"]["$.mid"]
    assert mid1.startswith(f"ga-{store_id}-"), mid1

    # The next record from the hub is this alert's PUBACK: cut it. The hub has the alert, the
    # agent does not know, and re-sends it after the reconnect.
    env.proxy.cut_mid_record("s2c")
    env.send_udp(2)
    assert env.proxy.wait_cut(20 * SLOW)
    agent.wait_for(lambda: len(alerts(env.hub.messages())) >= 3, 30 * SLOW,
                   "the alert and its re-send")
    got = [m for m in alerts(env.hub.messages()) if '"seq":2' in m["body"]]
    assert len(got) >= 2, got
    mid2 = got[0]["properties"]["$.mid"]
    assert GA_ID.match(mid2) and mid2 != mid1
    assert all(m["properties"]["$.mid"] == mid2 for m in got), [m["properties"] for m in got]

    # Again, but no reconnect this time: SIGKILL, and a new process re-sends from the store.
    n_before = len(alerts(env.hub.messages()))
    env.proxy.refuse_new(True)
    env.proxy.cut_mid_record("s2c")
    env.send_udp(3)
    assert env.proxy.wait_cut(20 * SLOW)
    agent.wait_for(lambda: len(alerts(env.hub.messages())) > n_before, 10 * SLOW,
                   "the first send of alert 3")
    agent.stop(signal.SIGKILL)
    env.proxy.refuse_new(False)
    env.make_agent(**kw)
    env.hub.messages(wait_count=n_before + 2, timeout=30 * SLOW)
    got = [m for m in alerts(env.hub.messages()) if '"seq":3' in m["body"]]
    assert len(got) >= 2, got
    mid3 = got[0]["properties"]["$.mid"]
    assert mid3.startswith(f"ga-{store_id}-") and mid3 not in (mid1, mid2)
    assert all(m["properties"]["$.mid"] == mid3 for m in got), [m["properties"] for m in got]
    # The store id outlives the process.
    assert (env.work / "state" / "store-id").read_text().strip() == store_id
