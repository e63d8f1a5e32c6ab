"""The `mqtt` source: sensor readings from a local broker (a real mosquitto on 127.0.0.1, plain
TCP, as Zigbee2MQTT or Tasmota would publish to it), through our own MQTT client on the agent's
event loop. Readings are acknowledged only when their alerts are durable; the persistent session
keeps the readings sent while the agent is down."""
import json
import shutil
import socket
import subprocess
import time

import paho.mqtt.client as paho
import pytest

from harness import (SLOW, Agent, Hub, assert_all_in_order, fresh_work, reading, seqs,
                     wait_for_all)


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def local(request):
    work = fresh_work(request.node.name)
    hub = Hub(work).start()
    port = free_tcp_port()
    conf = work / "local-mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                    "max_queued_messages 100000\n"
                    + ("user root\n" if shutil.which("id") and subprocess.run(
                        ["id", "-u"], capture_output=True, text=True).stdout.strip() == "0"
                       else ""))
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    pub = paho.Client(client_id="sensor-1", clean_session=True)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    agents = []

    def make_agent(start=True, **kw):
        kw.setdefault("source__type", "mqtt")
        kw.setdefault("source__broker", f"127.0.0.1:{port}")
        kw.setdefault("source__topic", "sensors/+/reading")
        a = Agent(work, hub, **kw)
        agents.append(a)
        return a.start() if start else a

    def send(i, temp=30):
        pub.publish("sensors/s1/reading", reading(i, temp), qos=1).wait_for_publish(10)

    yield hub, make_agent, send
    for a in agents:
        a.stop()
    pub.loop_stop()
    pub.disconnect()
    broker.terminate()
    broker.wait(10)
    hub.stop()


def stats(hub):
    return hub.twin().get("reported", {}).get("agentStats", {})


def test_readings_from_a_local_broker_become_alerts(local):
    hub, make_agent, send = local
    agent = make_agent()
    agent.wait_log("mqtt source: connected", 10 * SLOW)
    time.sleep(0.5)  # the SUBACK
    for i in range(40):
        send(i, 30 if i % 2 == 0 else 20)
    msgs = wait_for_all(hub, range(0, 40, 2), 30 * SLOW)
    assert_all_in_order(seqs(msgs), list(range(0, 40, 2)))


def test_readings_sent_while_the_agent_is_down_are_kept_by_the_broker(local):
    hub, make_agent, send = local
    agent = make_agent()
    agent.wait_log("mqtt source: connected", 10 * SLOW)
    time.sleep(0.5)
    for i in range(10):
        send(i)
    wait_for_all(hub, range(10), 30 * SLOW)
    assert agent.stop() == 0
    for i in range(10, 40):
        send(i)  # the broker queues them for the agent's persistent session (QoS 1)
    agent2 = make_agent()
    msgs = wait_for_all(hub, range(40), 60 * SLOW)
    assert_all_in_order(seqs(msgs), list(range(40)))
    assert agent2.proc.poll() is None


def test_a_store_too_small_makes_readings_wait_and_loses_none(local):
    hub, make_agent, send = local
    agent = make_agent(queue__max_bytes=8192, hub__max_inflight=1, log__stats_interval=1)
    agent.wait_log("mqtt source: connected", 10 * SLOW)
    time.sleep(0.5)
    n = 1500 // SLOW
    for i in range(n):
        send(i)
    msgs = wait_for_all(hub, range(n), 120 * SLOW)
    assert_all_in_order(seqs(msgs), list(range(n)))
    agent.wait_for(lambda: stats(hub).get("messagesReceived", 0) >= n, 30 * SLOW, "counted")
    s = stats(hub)
    print("agentStats:", json.dumps(s))
    assert s["queueDropped"] == 0
