#!/usr/bin/env python3
"""End-to-end test of the hub emulator: real mosquitto + plugin + TLS + SAS, driven through
hubemu, hubctl and tempsensor, with a module client standing in for the agent."""

import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.realpath(__file__))
TOOLS = os.path.dirname(HERE)
sys.path.insert(0, TOOLS)
import hubemu_lib as lib  # noqa: E402

PASSED = []
FAILED = []


def run(*args, check=True, timeout=60):
    r = subprocess.run([sys.executable] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr}{r.stdout}")
    return r


def hubctl(d, *args, check=True, timeout=60):
    return run(os.path.join(TOOLS, "hubctl"), "--dir", d, *args, check=check, timeout=timeout)


def hubctl_json(d, *args):
    return json.loads(hubctl(d, *args).stdout)


def case(fn):
    name = fn.__name__
    try:
        fn()
        PASSED.append(name)
        print(f"PASS {name}", flush=True)
    except Exception as e:  # noqa: BLE001
        FAILED.append(name)
        print(f"FAIL {name}: {e!r}", flush=True)


def connect(d, ident, **kw):
    return lib.connect_identity(d, ident, **kw)


def raw_connect(d, ident, password=None, username=None, client_id=None, cafile=None):
    conf = lib.read_conf(lib.conf_path(d))
    return lib.Client("127.0.0.1", lib.read_port(d), cafile or os.path.join(d, "ca.pem"),
                      client_id or ident, username or lib.username_for(conf["hub"], ident),
                      password, timeout=5.0)


def expect_connack(code, fn):
    try:
        c = fn()
    except lib.ConnackError as e:
        assert e.code == code, f"expected CONNACK {code}, got {e.code}"
        return
    c.close()
    raise AssertionError(f"expected CONNACK {code}, connection was accepted")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    shutil.rmtree(d, ignore_errors=True)
    t0 = time.monotonic()
    run(os.path.join(TOOLS, "hubemu"), "start", "--dir", d)
    print(f"started in {time.monotonic() - t0:.2f} s", flush=True)
    conf = lib.read_conf(lib.conf_path(d))
    hub = conf["hub"]
    state = {}

    def files_created():
        for f in ("ca.pem", "ca.key", "server.pem", "server.key", "other-ca.pem", "port",
                  "mosquitto.pid", "mosquitto.log", "mosquitto.conf", "emulator.conf"):
            assert os.path.exists(os.path.join(d, f)), f
        cs = run(os.path.join(TOOLS, "hubemu"), "connstr", "--dir", d, "edgedev/filter",
                 "--gateway", "localhost").stdout.strip()
        assert cs.startswith(f"HostName={hub};DeviceId=edgedev;ModuleId=filter;"
                             "GatewayHostName=localhost;SharedAccessKey="), cs

    def twin_roundtrip():
        c = connect(d, "edgedev/filter", clean=False)
        c.subscribe(["$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#",
                     "$iothub/methods/POST/#", "devices/edgedev/modules/filter/inputs/input1/#"])
        c.publish("$iothub/twin/GET/?$rid=1", b"", 0)
        topic, body, _ = c.receive(time.monotonic() + 5)
        assert topic == "$iothub/twin/res/200/?$rid=1", topic
        twin = json.loads(body)
        assert twin["desired"]["$version"] == 1 and twin["reported"]["$version"] == 1, twin
        c.publish("$iothub/twin/PATCH/properties/reported/?$rid=2", b'{"a":1,"b":{"c":2}}', 0)
        topic, body, _ = c.receive(time.monotonic() + 5)
        assert topic == "$iothub/twin/res/204/?$rid=2&$version=2", topic
        c.publish("$iothub/twin/PATCH/properties/reported/?$rid=3", b'{"a":null}', 0)
        topic, _, _ = c.receive(time.monotonic() + 5)
        assert topic == "$iothub/twin/res/204/?$rid=3&$version=3", topic
        c.publish("$iothub/twin/PATCH/properties/reported/?$rid=4", b'not json', 0)
        topic, _, _ = c.receive(time.monotonic() + 5)
        assert topic.startswith("$iothub/twin/res/400/?$rid=4"), topic
        r = hubctl_json(d, "twin", "set-desired", "edgedev/filter", '{"TemperatureThreshold":30}')
        assert r["version"] == 2, r
        topic, body, _ = c.receive(time.monotonic() + 5)
        assert topic == "$iothub/twin/PATCH/properties/desired/?$version=2", topic
        assert json.loads(body) == {"TemperatureThreshold": 30, "$version": 2}, body
        shown = hubctl_json(d, "twin", "show", "edgedev/filter")
        assert shown["reported"] == {"b": {"c": 2}, "$version": 3}, shown
        state["filter"] = c

    def twin_get_faults():
        c = state["filter"]
        assert hubctl_json(d, "twin", "fail-get", "edgedev/filter", "--status", "500",
                           "--count", "1") == {"pending_faults": 1}
        assert hubctl_json(d, "twin", "drop-get", "edgedev/filter") == {"pending_faults": 2}
        c.publish("$iothub/twin/GET/?$rid=f1", b"", 0)
        topic, body, _ = c.receive(time.monotonic() + 5)
        assert topic == "$iothub/twin/res/500/?$rid=f1", topic
        c.publish("$iothub/twin/GET/?$rid=f2", b"", 0)
        c.publish("$iothub/twin/GET/?$rid=f3", b"", 0)
        topic, body, _ = c.receive(time.monotonic() + 5)
        assert topic == "$iothub/twin/res/200/?$rid=f3", topic  # f2 was dropped
        assert json.loads(body)["desired"]["$version"] == 2, body
        r = hubctl(d, "twin", "fail-get", "edgedev/filter", "--status", "200", check=False)
        assert r.returncode != 0 and "status" in r.stderr, r.stderr

    def method_roundtrip():
        c = state["filter"]
        result = {}

        def invoke():
            result["r"] = hubctl_json(d, "method", "edgedev/filter", "rebootDevice", '{"x":1}',
                                      "--timeout", "10")
        th = threading.Thread(target=invoke)
        th.start()
        topic, body, _ = c.receive(time.monotonic() + 10)
        assert topic.startswith("$iothub/methods/POST/rebootDevice/?$rid="), topic
        assert json.loads(body) == {"x": 1}
        rid = topic.split("$rid=")[1]
        c.publish(f"$iothub/methods/res/200/?$rid={rid}", b'{"rebooting":true}', 0)
        th.join(15)
        assert result["r"] == {"status": 200, "payload": {"rebooting": True}}, result
        r = hubctl_json(d, "method", "edgedev/filter", "slow", "--timeout", "1")
        assert r["status"] == 504, r
        c.receive(time.monotonic() + 2)  # the unanswered request
        r = hubctl_json(d, "method", "leaf1", "x", "--timeout", "1")
        assert r["status"] == 404, r

    def route_and_upstream():
        c = state["filter"]
        run(os.path.join(TOOLS, "tempsensor"), "--dir", d, "--count", "2", "--interval", "0",
            "--values", "20,30")
        got = []
        while len(got) < 2:
            m = c.receive(time.monotonic() + 5)
            assert m, "routed input did not arrive"
            got.append(m)
        topic, body, qos = got[1]
        assert qos == 1, qos
        prefix = "devices/edgedev/modules/filter/inputs/input1/"
        assert topic.startswith(prefix), topic
        bag = dict(urllib.parse.parse_qsl(topic[len(prefix):]))
        assert bag["$.cdid"] == "edgedev" and bag["$.cmid"] == "tempSensor", bag
        assert "$.on" not in bag and bag["sequenceNumber"] == "2", bag
        assert bag["$.ct"] == "application/json" and bag["$.ce"] == "utf-8", bag
        assert json.loads(body)["machine"]["temperature"] == 30
        # the "agent" forwards an alert on output1
        alert = "devices/edgedev/modules/filter/messages/events/" \
                "%24.on=output1&%24.ct=application%2Fjson&%24.ce=utf-8&MessageType=Alert"
        c.publish(alert, body, 1)
        msgs = [json.loads(x) for x in hubctl(d, "messages", "--wait-count", "1", "--timeout",
                                              "5").stdout.splitlines()]
        m = msgs[-1]
        assert m["from"] == "edgedev/filter" and m["properties"]["MessageType"] == "Alert", m
        assert m["properties"]["$.on"] == "output1" and m["body"] == body.decode(), m
        # device telemetry recorded too
        leaf = connect(d, "leaf1")
        leaf.publish("devices/leaf1/messages/events/k=v", b"hello", 1)
        leaf.disconnect()
        msgs = [json.loads(x) for x in hubctl(d, "messages", "--since", str(m["seq"]),
                                              "--wait-count", "1").stdout.splitlines()]
        assert msgs[0]["from"] == "leaf1" and msgs[0]["body"] == "hello", msgs

    def offline_queue_and_send_input():
        c = state.pop("filter")
        c.disconnect()
        run(os.path.join(TOOLS, "tempsensor"), "--dir", d, "--count", "1", "--interval", "0",
            "--values", "40")
        hubctl(d, "send-input", "edgedev/filter", "input1", "--body", "raw bytes",
               "--prop", "k=v w")
        c = connect(d, "edgedev/filter", clean=False)
        got = [c.receive(time.monotonic() + 5), c.receive(time.monotonic() + 5)]
        assert all(got), got
        assert json.loads(got[0][1])["machine"]["temperature"] == 40, got[0]
        assert got[1][1] == b"raw bytes" and "k=v%20w" in got[1][0], got[1]
        state["filter"] = c

    def scoping():
        leaf = connect(d, "leaf1")
        codes = leaf.subscribe(["devices/edgedev/modules/filter/inputs/#"])
        assert codes == [0x80], codes
        codes = leaf.subscribe(["$iothub/twin/res/#"])
        assert codes == [1], codes
        # another identity's twin responses never reach leaf1
        state["filter"].publish("$iothub/twin/GET/?$rid=9", b"", 0)
        assert state["filter"].receive(time.monotonic() + 5)[0] == "$iothub/twin/res/200/?$rid=9"
        assert leaf.receive(time.monotonic() + 1) is None
        # publishing outside its own topics closes the connection
        leaf.publish("devices/edgedev/modules/filter/messages/events/", b"x", 0)
        try:
            leaf.receive(time.monotonic() + 3)
            raise AssertionError("connection stayed open")
        except lib.MqttError:
            pass

    def auth_failures():
        key = conf["identities"]["leaf1"]
        other = conf["identities"]["edgedev"]
        expect_connack(5, lambda: raw_connect(d, "leaf1", lib.make_sas(hub, "leaf1", other)))
        expect_connack(5, lambda: raw_connect(
            d, "leaf1", lib.make_sas(hub, "leaf1", key, expiry=time.time() - 60)))
        expect_connack(5, lambda: raw_connect(d, "leaf1", lib.make_sas("other.host", "leaf1", key)))
        expect_connack(5, lambda: raw_connect(d, "leaf1", lib.make_sas(hub, "leaf1", key),
                                              client_id="edgedev"))
        expect_connack(3, lambda: raw_connect(d, "leaf1", lib.make_sas(hub, "leaf1", key),
                                              username=f"{hub}/leaf1/"))
        try:
            raw_connect(d, "leaf1", lib.make_sas(hub, "leaf1", key),
                        cafile=os.path.join(d, "other-ca.pem")).close()
            raise AssertionError("handshake with an unrelated CA succeeded")
        except ssl.SSLError:
            pass

    def refuse_drop_connections():
        key = conf["identities"]["leaf1"]
        hubctl(d, "refuse", "2")
        expect_connack(3, lambda: raw_connect(d, "leaf1", lib.make_sas(hub, "leaf1", key)))
        hubctl(d, "refuse", "2", "--code", "5")
        expect_connack(5, lambda: raw_connect(d, "leaf1", lib.make_sas(hub, "leaf1", key)))
        hubctl(d, "refuse", "0")
        c = connect(d, "leaf1")
        conns = {i["id"]: i for i in hubctl_json(d, "connections")["identities"]}
        assert conns["leaf1"]["connected"] and conns["leaf1"]["refused"] >= 2, conns
        hubctl(d, "drop", "leaf1")
        try:
            c.receive(time.monotonic() + 3)
            raise AssertionError("drop did not close the connection")
        except lib.MqttError:
            pass

    def token_expiry():
        key = conf["identities"]["leaf1"]
        c = raw_connect(d, "leaf1", lib.make_sas(hub, "leaf1", key, expiry=time.time() + 2))
        t = time.monotonic()
        try:
            c.receive(time.monotonic() + 6)
            raise AssertionError("connection outlived its token")
        except lib.MqttError:
            assert time.monotonic() - t < 5

    def restart_keeps_state():
        state.pop("filter").disconnect()
        before = hubctl_json(d, "twin", "show", "edgedev/filter")
        n = len(hubctl(d, "messages").stdout.splitlines())
        run(os.path.join(TOOLS, "tempsensor"), "--dir", d, "--count", "1", "--interval", "0",
            "--values", "50")
        port = lib.read_port(d)
        run(os.path.join(TOOLS, "hubemu"), "restart", "--dir", d)
        assert lib.read_port(d) == port
        assert hubctl_json(d, "twin", "show", "edgedev/filter") == before
        assert len(hubctl(d, "messages").stdout.splitlines()) == n
        c = connect(d, "edgedev/filter", clean=False)
        m = c.receive(time.monotonic() + 5)
        assert m and json.loads(m[1])["machine"]["temperature"] == 50, m
        c.disconnect()

    def twin_reset():
        c = connect(d, "edgedev/filter", clean=False)
        r = hubctl_json(d, "twin", "reset", "edgedev/filter", "--desired",
                        '{"TemperatureThreshold":28}')
        assert r == {"version": 1, "dropped": True}, r
        try:
            c.receive(time.monotonic() + 5)
            raise AssertionError("the re-created identity's old connection stayed open")
        except lib.MqttError:
            pass  # closed by the server, as deleting an identity does
        shown = hubctl_json(d, "twin", "show", "edgedev/filter")
        assert shown["desired"] == {"TemperatureThreshold": 28, "$version": 1}, shown
        assert shown["reported"] == {"$version": 1}, shown

    try:
        for fn in (files_created, twin_roundtrip, twin_get_faults, method_roundtrip,
                   route_and_upstream, offline_queue_and_send_input, scoping, auth_failures,
                   refuse_drop_connections, token_expiry, restart_keeps_state, twin_reset):
            case(fn)
    finally:
        run(os.path.join(TOOLS, "hubemu"), "stop", "--dir", d, check=False)
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
