"""The agent end to end against the emulator: filter, twin threshold, methods, hostile input."""

import pytest

from harness import SLOW, alert_bodies


@pytest.fixture
def env(module_env):
    return module_env


def body(t):
    return ('{"machine":{"temperature":%s,"pressure":1.38},"ambient":{"temperature":21.17,'
            '"humidity":25},"timeCreated":"2026-11-22T14:31:21.1234567Z"}' % t).encode()


SEED_READINGS = ["24.9", "25", "25.0", "25.0001", "26.5", "2.6e1", "-3", "100.25"]
ABOVE_25 = ["25.0001", "26.5", "2.6e1", "100.25"]


def test_seed_flow_forwards_exactly_the_readings_above_25_unchanged_and_in_order(env):
    hub, make_agent = env
    make_agent()
    for t in SEED_READINGS:
        hub.send_input(body(t))
    msgs = hub.messages(wait_count=4, timeout=30 * SLOW)
    assert alert_bodies(msgs) == [body(t).decode() for t in ABOVE_25]
    for m in msgs:
        props = m["properties"]
        assert props["MessageType"] == "Alert"
        assert props["$.on"] == "output1"
        assert props["$.ct"] == "application/json" and props["$.ce"] == "utf-8"
        assert m["from"] == "edgedev/filter"


def test_threshold_patched_live_to_30_is_applied_and_acked(env):
    hub, make_agent = env
    agent = make_agent()
    hub.set_desired({"TemperatureThreshold": 30})
    agent.wait_for(lambda: hub.twin()["reported"].get("TemperatureThreshold", {}).get("value") == 30,
                   20 * SLOW, "threshold ack 30")
    ack = hub.twin()["reported"]["TemperatureThreshold"]
    assert ack["ac"] == 200 and ack["av"] == hub.twin()["desired"]["$version"]
    for t in ["26.5", "30", "30.5"]:
        hub.send_input(body(t))
    msgs = hub.messages(wait_count=1, timeout=20 * SLOW)
    assert alert_bodies(msgs) == [body("30.5").decode()]
    assert "threshold: 25 -> 30" in agent.log()


def test_threshold_set_before_the_agent_starts_is_read_from_the_twin(env):
    hub, make_agent = env
    hub.set_desired({"TemperatureThreshold": 40})
    agent = make_agent()
    agent.wait_for(lambda: hub.twin()["reported"].get("TemperatureThreshold", {}).get("value") == 40,
                   20 * SLOW, "threshold ack 40")
    for t in ["39.9", "40", "40.5"]:
        hub.send_input(body(t))
    assert alert_bodies(hub.messages(wait_count=1, timeout=20 * SLOW)) == [body("40.5").decode()]


@pytest.mark.parametrize("bad", ["hot", None, {"value": 30}, True])
def test_invalid_desired_threshold_is_rejected_with_400_and_the_old_one_kept(env, bad):
    hub, make_agent = env
    agent = make_agent()
    hub.set_desired({"TemperatureThreshold": bad})
    version = hub.twin()["desired"]["$version"]
    agent.wait_for(lambda: hub.twin()["reported"].get("TemperatureThreshold", {}).get("av") == version,
                   20 * SLOW, "threshold ack 400")
    ack = hub.twin()["reported"]["TemperatureThreshold"]
    assert ack["ac"] == 400 and ack["value"] == 25
    hub.send_input(body("26"))
    assert alert_bodies(hub.messages(wait_count=1, timeout=20 * SLOW)) == [body("26").decode()]


def test_reconnect_rereads_twin_and_ignores_a_version_already_applied(env):
    hub, make_agent = env
    agent = make_agent()
    hub.set_desired({"TemperatureThreshold": 27})
    agent.wait_log("threshold: 25 -> 27", 20 * SLOW)
    hub.ctl("drop", "edgedev/filter")
    agent.wait_log("is not newer than", 60 * SLOW, "the replayed $version to be ignored after reconnect")
    assert agent.log().count("threshold: 25 -> 27") == 1


def test_reboot_device_simulated_reports_reboot_time(env):
    hub, make_agent = env
    agent = make_agent()
    answer = hub.method("rebootDevice", "{}")
    assert answer["status"] == 200 and isinstance(answer["payload"], dict)
    agent.wait_for(lambda: "rebootTime" in hub.twin()["reported"], 60 * SLOW, "rebootTime reported")
    assert hub.twin()["reported"]["rebootTime"].endswith("Z")
    assert "simulated reboot #1" in agent.log()


def test_unknown_method_is_404_with_a_json_error_body(env):
    hub, make_agent = env
    make_agent()
    answer = hub.method("selfDestruct", "{}")
    assert answer["status"] == 404 and answer["payload"]["error"] == "unknown method"


HOSTILE = [
    b"not json at all",
    b'{"machine":{"temperature":99',
    b"[" * 5000 + b"]" * 5000,
    b'{"machine":{"temperature":99},"pad":"' + b"x" * 200_000 + b'"}',
    b'{"machine":{"temperature":99},"bad":"\xff\xfe"}',
    b'{"machine":{"temperature":99,"temperature":10}}',
    b"",
    b'{"machine":{"temperature":"99"}}',
]


def test_hostile_payloads_are_not_forwarded_and_the_agent_keeps_filtering(env):
    hub, make_agent = env
    agent = make_agent()
    for h in HOSTILE:
        hub.send_input(h)
    hub.send_input(body("31"))
    msgs = hub.messages(wait_count=1, timeout=30 * SLOW)
    assert alert_bodies(msgs) == [body("31").decode()]
    assert agent.proc.poll() is None
    agent.wait_for(lambda: "too_large" in agent.log(), 10, "too_large rejection logged")
    for kind in ["not_json", "too_deep", "bad_utf8", "duplicate_key", "not_number"]:
        assert kind in agent.log(), kind


def test_wrong_key_is_refused_with_a_clear_log_line_and_no_secret(env):
    hub, make_agent = env
    good = hub.connstr("edgedev/filter", gateway="localhost")
    wrong = good.rsplit("SharedAccessKey=", 1)[0] + "SharedAccessKey=d3JvbmdrZXl3cm9uZ2tleXdyb25na2V5MTIzNA=="
    agent = make_agent(start=False, hub__connection_string=wrong)
    agent.start(wait_online=False)
    agent.wait_log("not authorized (CONNACK 5)", 30 * SLOW)
    assert "d3Jvbmdr" not in agent.log() and "sig=" not in agent.log()


def test_untrusted_ca_fails_the_handshake_safely(env):
    hub, make_agent = env
    agent = make_agent(start=False, hub__ca_file=hub.dir / "other-ca.pem")
    agent.start(wait_online=False)
    agent.wait_log("connect to localhost", 30 * SLOW, "a failed connect log line")
    assert agent.proc.poll() is None
    assert "connected to" not in agent.log()
