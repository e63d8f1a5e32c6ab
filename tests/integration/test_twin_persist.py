"""A twin that survives restarts: the applied desired threshold is kept in the state dir and used
from the first input after a restart (also while the hub is unreachable), a twin GET is
authoritative (a re-created twin with lower $versions applies), an unanswered or failed GET is
retried, and --check-config says which threshold will be used. Real agent, real emulator."""
import subprocess
import time

from harness import AGENT_CMD, MODULE, SLOW, alert_bodies, seqs


def body(t):
    return ('{"machine":{"temperature":%s},"ambient":{"temperature":21}}' % t).encode()


def ack(hub):
    return hub.twin()["reported"].get("TemperatureThreshold", {})


def wait_ack(agent, hub, value, version, timeout=20):
    agent.wait_for(lambda: ack(hub).get("value") == value and ack(hub).get("av") == version,
                   timeout * SLOW, f"threshold ack {value} at $version {version}")
    assert ack(hub)["ac"] == 200, ack(hub)


def apply_threshold(agent, hub, value):
    hub.set_desired({"TemperatureThreshold": value})
    version = hub.twin()["desired"]["$version"]
    wait_ack(agent, hub, value, version)
    return version


def stored(agent):
    return (agent.state / "desired-threshold").read_text()


def check_config(agent):
    return subprocess.run(AGENT_CMD + ["--check-config", "--config", str(agent.conf)],
                          capture_output=True, text=True, timeout=60 * SLOW)


def test_threshold_applied_before_a_restart_filters_the_inputs_queued_while_stopped(module_env):
    hub, make_agent = module_env
    agent = make_agent()
    version = apply_threshold(agent, hub, 30)
    assert agent.stop() == 0
    assert stored(agent) == ("gateway-agent desired-threshold 1\nversion=%d\nthreshold=30\n"
                             "from=twin patch\n" % version)
    # Kept by the broker for the agent's persistent session; delivered right after the CONNACK,
    # before the twin GET is answered.
    temps = list(range(26, 36))
    for t in temps:
        hub.send_input(body(t))
    agent.start()
    msgs = hub.messages(wait_count=5, timeout=30 * SLOW)
    time.sleep(1)  # anything forwarded wrongly would arrive about now
    assert alert_bodies(hub.messages()) == [body(t).decode() for t in temps if t > 30]
    assert len(alert_bodies(msgs)) == 5
    assert "threshold 30 (twin ($version %d, stored))" % version in agent.log()
    assert "threshold: 30 ->" not in agent.log() and "threshold: 25 -> 30" in agent.log()


def test_stored_threshold_filters_udp_readings_while_the_hub_refuses_at_start(env):
    hub, make_agent, send = env
    agent = make_agent()
    version = apply_threshold(agent, hub, 30)
    assert agent.stop() == 0
    hub.stop()  # refuses connections from now on
    agent.start(wait_online=False)
    agent.wait_log("threshold 30 (twin ($version %d, stored))" % version, 15 * SLOW,
                   "the start-up line naming the stored threshold")
    for i, t in enumerate(range(26, 36)):
        send(i, t)
    time.sleep(1)
    assert agent.log().count("connected to") == 1, "connected while the hub was down"
    hub.restart()  # same port
    msgs = hub.messages(wait_count=5, timeout=60 * SLOW)
    time.sleep(1)
    assert seqs(hub.messages()) == [5, 6, 7, 8, 9], seqs(msgs)  # 31..35 only


def test_recreated_twin_with_lower_versions_is_applied_by_the_get_and_its_patches(module_env):
    hub, make_agent = module_env
    agent = make_agent()
    for t in (30, 32):
        apply_threshold(agent, hub, t)
    high = apply_threshold(agent, hub, 33)
    assert high >= 4
    # Delete and re-create the identity: $version starts again at 1, the connection is dropped.
    hub.ctl("twin", "reset", MODULE, "--desired", '{"TemperatureThreshold":28}')
    wait_ack(agent, hub, 28, 1, timeout=60)
    assert "twin: GET $version 1 replaces the higher stored $version %d" % high in agent.log()
    assert "threshold=28\n" in stored(agent) and "version=1\n" in stored(agent)
    # A later patch with the new low versions applies too (2 > 1).
    version = apply_threshold(agent, hub, 29)
    assert version == 2
    for t in ("28.5", "29", "29.5"):
        hub.send_input(body(t))
    assert alert_bodies(hub.messages(wait_count=1, timeout=20 * SLOW)) == [body("29.5").decode()]
    time.sleep(0.5)
    assert alert_bodies(hub.messages()) == [body("29.5").decode()]


def test_get_answered_500_and_a_dropped_get_are_retried_until_the_value_arrives(module_env):
    hub, make_agent = module_env
    hub.set_desired({"TemperatureThreshold": 31})
    version = hub.twin()["desired"]["$version"]
    hub.ctl("twin", "fail-get", MODULE, "--status", "500", "--count", "1")
    hub.ctl("twin", "drop-get", MODULE, "--count", "1")
    agent = make_agent(start=False)
    agent.start(wait_online=False)
    wait_ack(agent, hub, 31, version, timeout=45)
    log = agent.log()
    assert "twin: GET answered 500; retrying in" in log and "(attempt 1)" in log
    assert "twin: GET not answered within 10 s; retrying in" in log and "(attempt 2)" in log
    assert log.count("twin: GET answered 500") == 1
    assert log.count("twin: GET not answered") == 1
    hub.send_input(body("30.5"))
    hub.send_input(body("31.5"))
    assert alert_bodies(hub.messages(wait_count=1, timeout=20 * SLOW)) == [body("31.5").decode()]


def test_a_patch_is_counted_received_and_applied_apart(module_env):
    hub, make_agent = module_env
    agent = make_agent(log__stats_interval=1)
    version = apply_threshold(agent, hub, 30)
    hub.set_desired({"other": 1})  # applied: a newer $version without the threshold
    hub.set_desired({"TemperatureThreshold": "hot"})  # received, rejected with 400

    def stats():
        return hub.twin()["reported"].get("agentStats", {})

    agent.wait_for(lambda: stats().get("twinPatches") == 3, 20 * SLOW, "3 patches counted")
    assert stats()["twinPatchesApplied"] == 2, stats()
    assert "version=%d\n" % (version + 2) in stored(agent)
    assert "threshold=30\n" in stored(agent)


def test_check_config_says_which_threshold_will_be_used_and_from_where(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False)
    r = check_config(agent)
    assert r.returncode == 0, r.stderr
    assert " threshold=25 (default) " in r.stdout, r.stdout
    explicit = make_agent(start=False, filter__threshold=25)  # same work dir: rewrites the conf
    assert " threshold=25 (conf) " in check_config(explicit).stdout
    agent = make_agent(start=False)
    agent.start()
    version = apply_threshold(agent, hub, 30)
    r = check_config(agent)  # while the agent runs: read only
    assert " threshold=30 (twin ($version %d, stored)) " % version in r.stdout, r.stdout
    assert agent.stop() == 0
    assert " threshold=30 (twin ($version %d, stored)) " % version in check_config(agent).stdout
    # A corrupt file is reported and ignored, at --check-config and at start.
    (agent.state / "desired-threshold").write_text("gateway-agent desired-threshold 1\nversion=x\n")
    r = check_config(agent)
    assert r.returncode == 0 and " threshold=25 (default) " in r.stdout, r.stdout
    assert "stored desired state ignored" in r.stderr and "bad version line" in r.stderr
    agent.start(wait_online=False)
    agent.wait_log("twin: stored desired state ignored", 15 * SLOW)
    # The GET then applies the twin's value again and stores it.
    agent.wait_for(lambda: "threshold=30\n" in stored(agent), 30 * SLOW, "the state stored again")
