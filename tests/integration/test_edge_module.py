"""The agent as an IoT Edge module (docs/iot-edge.md): no identity in the conf, only the IOTEDGE_*
environment; the trust bundle and every SAS token come from the emulator's workload API on a Unix
socket. Faults of the workload API give clear log lines and bounded retries, never a crash; the
EdgeHubConnectionString fallback of the SDKs works too."""
import os
import subprocess
import time

import pytest

import harness
from harness import MODULE, SLOW, Agent, Hub, WorkloadApi, alert_bodies, fresh_work

ROOT_FLAG = getattr(harness, "ROOT_FLAG", [])
SIGNED = "token signed by the IoT Edge workload API"


class EdgeAgent(Agent):
    """The real agent with a conf that names no identity and the edge runtime's environment."""

    def __init__(self, work, hub, env, **overrides):
        super().__init__(work, hub, **overrides)
        text = self.conf.read_text().splitlines()
        # Drop the harness's identity and CA: the edge environment brings both.
        self.conf.write_text("\n".join(line for line in text if not line.startswith(
            ("connection_string =", "ca_file ="))) + "\n")
        self.env = env

    def start(self, wait_online=True):
        self.logf = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("IOTEDGE_") and k not in ("EdgeHubConnectionString",
                                                             "EdgeModuleCACertificateFile")}
        env.update(self.env)
        self.proc = subprocess.Popen(self.cmd_prefix + harness.AGENT_CMD +
                                     ["--config", str(self.conf)] + ROOT_FLAG,
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        if wait_online:
            self.wait_for(lambda: self.hub.twin().get("reported", {}).get("agentStats"),
                          30 * SLOW, "agentStats reported after connect")
        return self


@pytest.fixture
def edge(request):
    """An emulator, its workload API, and a maker of edge agents (started or not)."""
    work = fresh_work(request.node.name)
    hub = Hub(work).start()
    wl = WorkloadApi(hub).start()
    agents = []

    def make_agent(start=True, env=None, **kw):
        a = EdgeAgent(work, hub, env if env is not None else wl.env(), **kw)
        agents.append(a)
        return a.start() if start else a

    yield hub, wl, make_agent
    for a in agents:
        a.stop()
    wl.stop()
    hub.stop()


def body(t):
    return ('{"machine":{"temperature":%s},"ambient":{"temperature":21}}' % t).encode()


def err_lines(agent, needle):
    """Error and warning lines (<3>, <4>) with `needle`."""
    return [line for line in agent.log().splitlines()
            if needle in line and line.startswith(("<3>", "<4>"))]


def test_edge_module_connects_filters_applies_twin_and_reboots(edge):
    hub, wl, make_agent = edge
    agent = make_agent()
    assert agent.log().count(SIGNED) >= 1
    bundle = agent.state / "edge-trust-bundle.pem"
    assert bundle.read_text() == (hub.dir / "ca.pem").read_text()
    assert "1 certificate(s)" in agent.log()
    assert [r["status"] for r in wl.requests("bundle")] == [200]
    assert all(r["status"] == 200 for r in wl.requests("sign")) and wl.requests("sign")
    assert "/modules/filter/genid/637899318049296327/sign" in wl.requests("sign")[0]["path"]

    # Filter: only readings above the threshold arrive upstream, unchanged.
    for t in ["24", "26.5", "25", "30"]:
        hub.send_input(body(t))
    msgs = hub.messages(wait_count=2, timeout=30 * SLOW)
    assert alert_bodies(msgs) == [body("26.5").decode(), body("30").decode()]
    assert all(m["from"] == MODULE for m in msgs)

    # Twin patch applied and acknowledged.
    hub.set_desired({"TemperatureThreshold": 28})
    agent.wait_for(lambda: hub.twin()["reported"].get("TemperatureThreshold", {}).get("value")
                   == 28, 20 * SLOW, "threshold ack 28")
    hub.send_input(body("27"))
    hub.send_input(body("29"))
    msgs = hub.messages(wait_count=3, timeout=30 * SLOW)
    assert alert_bodies(msgs)[2:] == [body("29").decode()]

    # rebootDevice with [reboot] mode = simulate (the harness's default).
    answer = hub.method("rebootDevice", "{}")
    assert answer["status"] == 200, answer
    agent.wait_for(lambda: "rebootTime" in hub.twin()["reported"], 60 * SLOW,
                   "rebootTime reported")


def test_token_renewal_asks_the_workload_api_again(edge):
    hub, wl, make_agent = edge
    agent = make_agent(hub__sas_ttl=10)  # renewed at 80 %: every 8 s
    agent.wait_for(lambda: len(wl.requests("sign")) >= 3, 45 * SLOW, "two renewals signed")
    assert all(r["status"] == 200 for r in wl.requests("sign"))
    assert "SAS token renewal" in agent.log()
    # The trust bundle is fetched once; each token is signed anew.
    assert len(wl.requests("bundle")) == 1
    agent.wait_for(lambda: agent.log().count(SIGNED) >= 3, 10 * SLOW, "signed tokens logged")
    hub.send_input(body("31"))
    assert alert_bodies(hub.messages(wait_count=1, timeout=30 * SLOW)) == [body("31").decode()]


def test_missing_socket_is_retried_with_backoff_until_the_runtime_is_there(edge):
    hub, wl, make_agent = edge
    wl.stop()
    agent = make_agent(start=False)
    agent.start(wait_online=False)
    needle = "IoT Edge workload API (trust bundle"
    agent.wait_log(needle, 20 * SLOW)
    time.sleep(6)
    lines = err_lines(agent, needle)
    assert "No such file or directory" in lines[0], lines[0]
    # Exponential backoff (1, 2, 4 s ceilings with jitter): a handful of tries, not a spin.
    assert 1 <= len(lines) <= 8, lines
    assert agent.proc.poll() is None
    wl.start()
    agent.wait_for(lambda: hub.twin().get("reported", {}).get("agentStats"), 90 * SLOW,
                   "online once the workload socket exists")


def test_403_is_logged_with_its_message_and_waits_long(edge):
    hub, wl, make_agent = edge
    wl.set_faults("sign 403")
    agent = make_agent(start=False)
    agent.start(wait_online=False)
    agent.wait_log("HTTP 403", 20 * SLOW)
    time.sleep(4)
    lines = err_lines(agent, "HTTP 403")
    assert len(lines) == 1, lines
    assert "caller is not the module's own container" in lines[0], lines[0]
    assert "token signing" in lines[0]
    # Like a refused CONNECT: the next try is a minute or more away.
    waits = [int(line.split("next connect attempt in ")[1].split()[0])
             for line in agent.log().splitlines() if "next connect attempt in" in line]
    assert waits and waits[-1] >= 60000, waits
    assert len(wl.requests("sign")) == 1
    assert agent.proc.poll() is None


def test_500_twice_then_200_connects_after_backoff(edge):
    hub, wl, make_agent = edge
    wl.set_faults("sign 500 2")
    agent = make_agent()
    assert [r["status"] for r in wl.requests("sign")][:3] == [500, 500, 200]
    lines = err_lines(agent, "HTTP 500")
    assert len(lines) == 2, lines
    assert "Internal error (emulated)" in lines[0]


def test_connections_closed_without_a_reply_are_retried(edge):
    hub, wl, make_agent = edge
    # Two closes: the client's own retries (3 tries a request) get the third through.
    wl.set_faults("sign close 2")
    agent = make_agent()
    assert [r["status"] for r in wl.requests("sign")][:3] == [0, 0, 200]
    assert not err_lines(agent, "hub link: IoT Edge workload API (")


def test_a_server_that_always_closes_fails_each_request_after_three_tries(edge):
    hub, wl, make_agent = edge
    wl.set_faults("sign close")
    agent = make_agent(start=False)
    agent.start(wait_online=False)
    agent.wait_log("without a reply (3 attempts)", 20 * SLOW)
    time.sleep(3)
    tries = len(wl.requests("sign"))
    fails = len(err_lines(agent, "without a reply (3 attempts)"))
    # Three tries a request (a fourth request may be under way).
    assert 3 * fails <= tries <= 3 * fails + 3, (tries, fails)
    assert fails <= 6, fails
    assert agent.proc.poll() is None
    wl.set_faults()
    agent.wait_for(lambda: hub.twin().get("reported", {}).get("agentStats"), 90 * SLOW,
                   "online once the workload API answers")


@pytest.mark.parametrize("mode,needle", [
    ("oversized", "larger than 64 KiB"),
    ("nonjson", 'HTTP 200 without a "digest" string in a JSON object'),
])
def test_unusable_sign_answers_are_refused_clearly(edge, mode, needle):
    hub, wl, make_agent = edge
    wl.set_faults(f"sign {mode} 1")
    agent = make_agent()  # the retry after the backoff gets a good answer
    lines = err_lines(agent, needle)
    assert len(lines) == 1, agent.log()[-2000:]
    assert "token signing" in lines[0]
    # The unusable answer and the good one are both 200s; the API may not log the first when
    # the agent stops reading it early (oversized), so only "signed, and only 200s" is checked.
    statuses = [r["status"] for r in wl.requests("sign")]
    assert statuses and set(statuses) == {200}, statuses


def test_bundle_with_several_certificates_is_used_whole(edge):
    hub, wl, make_agent = edge
    wl.set_faults("bundle multi")
    agent = make_agent()
    assert "2 certificate(s)" in agent.log()
    pem = (agent.state / "edge-trust-bundle.pem").read_text()
    assert pem.count("BEGIN CERTIFICATE") == 2
    assert (hub.dir / "other-ca.pem").read_text() in pem


def test_bundle_without_a_certificate_is_an_error_then_retried(edge):
    hub, wl, make_agent = edge
    wl.set_faults("bundle badcert 1")
    agent = make_agent()
    assert len(err_lines(agent, "the trust bundle has no PEM certificate")) == 1
    assert [r["status"] for r in wl.requests("bundle")] == [200, 200]


def test_edge_hub_connection_string_fallback(edge):
    hub, wl, make_agent = edge
    env = {"EdgeHubConnectionString": hub.connstr(MODULE, gateway="localhost"),
           "EdgeModuleCACertificateFile": str(hub.dir / "ca.pem")}
    agent = make_agent(env=env)
    assert wl.requests() == []  # no workload API involved
    assert not (agent.state / "edge-trust-bundle.pem").exists()
    hub.send_input(body("40"))
    assert alert_bodies(hub.messages(wait_count=1, timeout=30 * SLOW)) == [body("40").decode()]


def test_bad_environment_exits_78_naming_each_variable(edge):
    hub, wl, make_agent = edge
    agent = make_agent(start=False, env=wl.env(IOTEDGE_AUTHSCHEME="x509",
                                               IOTEDGE_WORKLOADURI="http://127.0.0.1:15581",
                                               IOTEDGE_DEVICEID=None))
    agent.start(wait_online=False)
    assert agent.proc.wait(timeout=30 * SLOW) == 78
    log = agent.log()
    for name in ("IOTEDGE_AUTHSCHEME", "IOTEDGE_WORKLOADURI", "IOTEDGE_DEVICEID is not set"):
        assert name in log, log
    assert "IOTEDGE_MODULEID" not in log


def test_workload_socket_path_must_be_absolute_unix(tmp_path):
    """--check-config sees the same environment checks (no emulator needed)."""
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[state]\ndir = {tmp_path / 'state'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTEDGE_")}
    env.update({"IOTEDGE_WORKLOADURI": "unix://relative.sock", "IOTEDGE_MODULEID": "filter"})
    r = subprocess.run(harness.AGENT_CMD + ["--config", str(conf), "--check-config"] + ROOT_FLAG,
                       capture_output=True, text=True, timeout=60 * SLOW, env=env)
    assert r.returncode == 78, r.stderr
    assert "IOTEDGE_WORKLOADURI 'unix://relative.sock'" in r.stderr
    assert "the path is not absolute" in r.stderr


def run_check(agent):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTEDGE_")}
    env.update(agent.env)
    return subprocess.run(harness.AGENT_CMD + ["check", "--config", str(agent.conf)],
                          capture_output=True, text=True, timeout=120 * SLOW, env=env)


def test_check_tests_the_workload_socket_for_an_edge_identity(edge):
    hub, wl, make_agent = edge
    agent = make_agent(start=False)
    r = run_check(agent)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.split()[1:2] == ["workload"])
    assert line.startswith("OK"), r.stdout
    assert f"{wl.socket}: trust bundle with 1 certificate(s); a token signed for filter" in line
    assert len(wl.requests("bundle")) == 1 and len(wl.requests("sign")) == 1
    assert "not checked for an IoT Edge identity" in r.stdout
    # The runtime refuses to sign (not this module's container): FAIL with its message.
    wl.set_faults("sign 403")
    r = run_check(agent)
    assert r.returncode == 1, r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.split()[1:2] == ["workload"])
    assert line.startswith("FAIL") and "signing failed: HTTP 403" in line, line
    # No workload API at all.
    wl.stop()
    r = run_check(agent)
    assert r.returncode == 1, r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.split()[1:2] == ["workload"])
    assert line.startswith("FAIL") and "trust bundle:" in line, line
