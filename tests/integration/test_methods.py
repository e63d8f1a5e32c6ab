"""Direct methods against the emulator: rebootDevice records the reboot before it answers (and
answers 500, claiming nothing, when it cannot), unknown methods are 404 whatever their payload,
payloads up to the hub's 128 KiB limit are taken and larger ones refused with 413, and ids that
would turn our subscriptions into wildcards are refused by the conf check."""
import subprocess
import sys
import time

import pytest

from harness import AGENT_CMD, EMU, MODULE, SLOW
from test_disk_and_reboot import needs_root, private_tmpfs

sys.path.insert(0, str(EMU))
import hubemu_lib  # noqa: E402


@pytest.fixture
def env(module_env):
    return module_env


def call_method(hub, name, payload: str, timeout=30):
    """Like `hubctl method`, but with any payload text: hubctl refuses a payload that is not JSON
    and takes it on its command line, where one argument is limited to 128 KiB (MAX_ARG_STRLEN)."""
    client = hubemu_lib.connect_control(str(hub.dir), timeout=5.0)
    try:
        return hubemu_lib.control_request(client, {"cmd": "method", "id": MODULE, "name": name,
                                                   "payload": payload, "timeout": timeout},
                                          timeout + 5)
    finally:
        client.disconnect()


def json_of_size(n):
    """A JSON object of exactly n bytes."""
    head, tail = '{"pad":"', '"}'
    return head + "x" * (n - len(head) - len(tail)) + tail


def reported(hub):
    return hub.twin().get("reported", {})


def assert_no_reboot_time_after_reconnect(hub, agent):
    """rebootTime is reported on the way online: bounce the link and look again."""
    connects = agent.log().count("hub link: connected to")
    hub.ctl("drop", MODULE)
    agent.wait_for(lambda: agent.log().count("hub link: connected to") > connects, 60 * SLOW,
                   "the agent back online after the drop")
    time.sleep(2)
    assert "rebootTime" not in reported(hub), reported(hub)


# ---- rebootDevice: the request is on disk before the answer ----

def test_request_file_is_written_before_the_200(env):
    hub, make_agent = env
    agent = make_agent(reboot__mode="request-file")
    answer = hub.method("rebootDevice", "{}")
    assert answer["status"] == 200, answer
    # No waiting: the answer is only sent once the request and the pending marker are written.
    assert (agent.state / "reboot-request").exists()
    assert (agent.state / "reboot-pending").exists()


@pytest.mark.parametrize("mode,record", [("request-file", "reboot-request"),
                                         ("simulate", "simulated-boots")])
def test_request_that_cannot_be_written_answers_500_and_claims_no_reboot(env, mode, record):
    """The pending marker is written but the request is not (a directory is in the way): 500,
    and the marker is taken back, so no rebootTime is ever reported for it."""
    hub, make_agent = env
    agent = make_agent(start=False, reboot__mode=mode, reboot__simulate_delay=0)
    (agent.state / record).mkdir(parents=True)
    (agent.state / record / "keep").write_text("x")
    agent.start()
    answer = hub.method("rebootDevice", "{}")
    assert answer["status"] == 500, answer
    assert "error" in answer["payload"], answer
    assert not (agent.state / "reboot-pending").exists(), "the marker was taken back"
    assert not (agent.state / (record + ".tmp")).exists()
    assert "reboot: not started" in agent.log()
    assert "rebootDevice accepted" not in agent.log()
    assert "simulated reboot #" not in agent.log()
    assert_no_reboot_time_after_reconnect(hub, agent)
    # A restart on the same state dir finds nothing to report either.
    agent.stop()
    after = make_agent(reboot__mode=mode, reboot__simulate_delay=0)
    time.sleep(2)
    assert "rebootTime" not in reported(hub), reported(hub)
    assert after.proc.poll() is None


@needs_root
@pytest.mark.parametrize("mode", ["request-file", "simulate"])
def test_read_only_state_dir_answers_500_and_no_reboot_time_later(env, mode):
    hub, make_agent = env
    agent = make_agent(start=False, reboot__mode=mode, reboot__simulate_delay=0)
    private_tmpfs(agent, "ro,size=64k")
    agent.start()
    assert "Read-only file system" in agent.log()
    answer = hub.method("rebootDevice", "{}")
    assert answer["status"] == 500, answer
    assert "error" in answer["payload"], answer
    assert "rebootDevice accepted" not in agent.log()
    time.sleep(2)  # a simulated reboot would be due by now
    assert "simulated reboot #" not in agent.log()
    assert_no_reboot_time_after_reconnect(hub, agent)
    assert agent.proc.poll() is None


def test_delayed_simulated_reboot_still_reports_reboot_time(env):
    hub, make_agent = env
    agent = make_agent(reboot__mode="simulate", reboot__simulate_delay=1)
    assert hub.method("rebootDevice")["status"] == 200
    agent.wait_log("reboot: simulated reboot #1", 10 * SLOW)
    agent.wait_for(lambda: "rebootTime" in reported(hub), 30 * SLOW, "rebootTime reported")


# ---- names, payloads and sizes ----

def test_unknown_method_with_a_payload_that_is_not_json_is_404(env):
    hub, make_agent = env
    agent = make_agent()
    answer = call_method(hub, "selfDestruct", "not json {")
    assert answer["status"] == 404, answer
    assert answer["payload"]["error"] == "unknown method"
    assert answer["payload"]["method"] == "selfDestruct"
    # The known method still checks its payload.
    answer = call_method(hub, "rebootDevice", "not json {")
    assert answer["status"] == 400, answer
    assert "rebootDevice accepted" not in agent.log()


def test_100_kib_json_payload_through_hubctl_is_accepted(env):
    hub, make_agent = env
    agent = make_agent()
    answer = hub.method("rebootDevice", json_of_size(100 * 1024))
    assert answer["status"] == 200, answer
    agent.wait_for(lambda: "rebootTime" in reported(hub), 60 * SLOW, "rebootTime reported")


def test_json_payload_at_the_hub_limit_of_128_kib_is_accepted(env):
    hub, make_agent = env
    make_agent()
    answer = call_method(hub, "rebootDevice", json_of_size(128 * 1024))
    assert answer["status"] == 200, answer


def test_payload_over_the_hub_limit_that_still_fits_the_link_is_refused_with_413(env):
    hub, make_agent = env
    make_agent()
    answer = call_method(hub, "rebootDevice", json_of_size(140 * 1024))
    assert answer["status"] == 413, answer


def test_payload_over_the_160_kib_receive_buffer_is_refused_with_413(env):
    hub, make_agent = env
    agent = make_agent()
    answer = call_method(hub, "rebootDevice", json_of_size(200 * 1024))
    assert answer["status"] == 413, answer
    assert answer["payload"]["error"] == "payload too large"
    assert "rebootDevice accepted" not in agent.log()
    # The link stays up and the next call is answered.
    assert hub.method("selfDestruct", "{}")["status"] == 404


# ---- identities that would become wildcards ----

@pytest.mark.parametrize("key,value,char", [("DeviceId", "edge+dev", "+"),
                                            ("DeviceId", "edge#", "#"),
                                            ("ModuleId", "fil/ter", "/"),
                                            ("ModuleId", "filter#", "#")])
def test_ids_with_mqtt_wildcards_or_slash_are_a_conf_error(tmp_path, key, value, char):
    ids = {"DeviceId": "edgedev", "ModuleId": "filter"}
    ids[key] = value
    cs = (f"HostName=hub.example;DeviceId={ids['DeviceId']};ModuleId={ids['ModuleId']};"
          "SharedAccessKey=NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=")
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[hub]\nconnection_string = {cs}\n[state]\ndir = {tmp_path / 'state'}\n")
    conf.chmod(0o600)
    for extra in (["--check-config"], []):  # the same check at a real start
        r = subprocess.run(AGENT_CMD + ["--config", str(conf)] + extra, capture_output=True,
                           text=True, timeout=60 * SLOW)
        assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
        assert f"({key}: '{char}')" in r.stderr, r.stderr
        assert "wildcard" in r.stderr, r.stderr
        assert "NMgJDvdK" not in r.stderr + r.stdout
