"""Start-up rules of the service, with the real binary: the secrets rule for the conf and for
connection_string_file, no root without --allow-root, the reboot request in the unit's state dir,
and the request the agent writes is one the reboot oneshot acts on."""
import os
import re
import subprocess

import pytest

from harness import AGENT_CMD, REPO, SLOW

SCRIPT = REPO / "systemd/gateway-agent-reboot-if-fresh"


def run(agent, *extra, env=None):
    return subprocess.run(AGENT_CMD + ["--config", str(agent.conf)] + list(extra),
                          capture_output=True, text=True, timeout=60 * SLOW,
                          env=dict(os.environ, **(env or {})))


def secret_of(agent):
    return re.search(r"SharedAccessKey=([^;\s]+)", agent.conf.read_text()).group(1)


@pytest.mark.parametrize("mode,ok", [(0o600, True), (0o640, True), (0o644, False),
                                     (0o604, False), (0o660, False)])
def test_conf_holding_the_secret_follows_the_secrets_rule(module_env, mode, ok):
    hub, make_agent = module_env
    agent = make_agent(start=False)
    agent.conf.chmod(mode)
    r = run(agent, "--check-config")
    assert (r.returncode == 0) == ok, (r.returncode, r.stdout, r.stderr)
    if not ok:
        assert r.returncode == 78
        assert f"{agent.conf}: mode {mode:04o}" in r.stderr, r.stderr
        assert "chmod 0640" in r.stderr and "chown root:gateway-agent" in r.stderr
    assert secret_of(agent) not in r.stdout + r.stderr


@pytest.mark.parametrize("mode,ok", [(0o640, True), (0o644, False)])
def test_connection_string_file_follows_the_same_rule(module_env, tmp_path, mode, ok):
    hub, make_agent = module_env
    agent = make_agent(start=False)
    text = agent.conf.read_text()
    cs = re.search(r"^connection_string = (.*)$", text, re.M).group(1)
    csfile = tmp_path / "cs"
    csfile.write_text(cs + "\n")
    csfile.chmod(mode)
    agent.conf.write_text(text.replace(f"connection_string = {cs}",
                                       f"connection_string_file = {csfile}"))
    agent.conf.chmod(0o644)  # no secret in it any more: readable is fine
    r = run(agent, "--check-config")
    assert (r.returncode == 0) == ok, (r.returncode, r.stdout, r.stderr)
    if not ok:
        assert f"connection_string_file: {csfile}: mode 0644" in r.stderr, r.stderr
    assert secret_of_cs(cs) not in r.stdout + r.stderr


def secret_of_cs(cs):
    return re.search(r"SharedAccessKey=([^;\s]+)", cs).group(1)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to see the refusal")
def test_root_is_refused_without_allow_root(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False)
    r = run(agent)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "running as root" in r.stdout + r.stderr and "--allow-root" in r.stdout + r.stderr


def test_request_file_mode_under_the_unit_needs_its_state_dir(module_env, tmp_path):
    hub, make_agent = module_env
    agent = make_agent(start=False, reboot__mode="request-file")
    other = tmp_path / "unit-state"
    r = run(agent, "--check-config", env={"STATE_DIRECTORY": str(other)})
    assert r.returncode == 78, (r.stdout, r.stderr)
    assert f"reboot path unit watches {other}/reboot-request" in r.stderr, r.stderr
    # The same dir (a trailing slash does not matter) passes; simulate mode does not care.
    assert run(agent, "--check-config", env={"STATE_DIRECTORY": f"{agent.state}/"}).returncode == 0
    sim = make_agent(start=False, reboot__mode="simulate")
    assert run(sim, "--check-config", env={"STATE_DIRECTORY": str(other)}).returncode == 0


def test_the_agents_request_is_one_the_oneshot_reboots_for(module_env, tmp_path):
    hub, make_agent = module_env
    agent = make_agent(reboot__mode="request-file")
    answer = hub.method("rebootDevice", "{}")
    assert answer["status"] == 200, answer
    request = agent.state / "reboot-request"
    text = request.read_text()
    assert re.search(r"^boot_id=[0-9a-f-]{36}$", text, re.M), text
    assert re.search(r"^time=\d+$", text, re.M), text
    calls = tmp_path / "calls"
    fake = tmp_path / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    # The real boot id (the agent under qemu-user reads the same /proc as the host).
    r = subprocess.run([str(SCRIPT), str(request)], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, SYSTEMCTL=str(fake),
                                HISTORY=str(tmp_path / "history")))
    assert r.returncode == 0, r.stderr
    assert calls.read_text().split() == ["reboot"]
    assert not request.exists()


# ---- --check-config checks what start-up checks, with the same exit codes ----

@pytest.mark.parametrize("content,why", [(None, "cannot read"),
                                         ("not a certificate\n", "no PEM certificate")])
def test_check_config_and_start_refuse_a_bad_ca_file(module_env, tmp_path, content, why):
    hub, make_agent = module_env
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_text(content)
    agent = make_agent(start=False, hub__ca_file=ca)
    for extra in (["--check-config"], ["--allow-root"] if os.geteuid() == 0 else []):
        r = run(agent, *extra)
        assert r.returncode == 1, (extra, r.stdout, r.stderr)
        assert f"[hub] ca_file: {ca}: {why}" in r.stdout + r.stderr, r.stdout + r.stderr


def test_check_config_refuses_an_unusable_state_dir(module_env, tmp_path):
    hub, make_agent = module_env
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    agent = make_agent(start=False, state__dir=not_a_dir)
    r = run(agent, "--check-config")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "[state] dir:" in r.stderr and str(not_a_dir) in r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to the service user needs root")
def test_check_config_as_root_checks_as_the_service_user(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False)  # its conf is 0600 root: the service user could not read it
    r = run(agent, "--check-config", "--user", "nobody")
    assert r.returncode == 78, (r.stdout, r.stderr)
    assert str(agent.conf) in r.stderr and "ermission denied" in r.stderr, r.stderr
    # No such user (as on a machine without the package): says so and checks as root.
    r = run(agent, "--check-config", "--user", "no-such-user-ga")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "user no-such-user-ga does not exist; checking as root" in r.stderr


def test_reboot_answers_503_while_the_path_unit_is_not_active(module_env, tmp_path, monkeypatch):
    hub, make_agent = module_env
    code = tmp_path / "is-active-exit"
    code.write_text("3\n")  # systemctl's answer for an inactive unit
    fake = tmp_path / "bin/systemctl"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\nexit $(cat {code})\n')
    fake.chmod(0o755)
    # As under the unit: started by systemd, with our systemctl first in PATH.
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    agent = make_agent(reboot__mode="request-file")
    agent.wait_log("gateway-agent-reboot.path is not active", 10 * SLOW)
    answer = hub.method("rebootDevice", "{}")
    assert answer["status"] == 503, answer
    assert not (agent.state / "reboot-request").exists()
    assert not (agent.state / "reboot-pending").exists()
    assert "is-active --quiet gateway-agent-reboot.path" in (tmp_path / "calls").read_text()
    code.write_text("0\n")  # the operator enabled it: the next call is accepted
    answer = hub.method("rebootDevice", "{}")
    assert answer["status"] == 200, answer
    assert (agent.state / "reboot-request").exists()


def test_environment_overrides_the_conf_and_check_config_says_where(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False, filter__threshold=20)
    r = run(agent, "--check-config", env={"GATEWAY_AGENT_FILTER_THRESHOLD": "40"})
    assert r.returncode == 0, r.stderr
    assert " threshold=40 (environment) " in r.stdout, r.stdout
    assert "[filter] threshold from environment GATEWAY_AGENT_FILTER_THRESHOLD" in r.stdout
    assert f"[hub] connection_string from {agent.conf}:" in r.stdout
    r = run(agent, "--check-config", env={"GATEWAY_AGENT_FILTER_THRESHOLD": "warm"})
    assert r.returncode == 78
    assert "environment GATEWAY_AGENT_FILTER_THRESHOLD ([filter] threshold)" in r.stderr


def test_systemd_hears_ready_status_with_depth_and_watchdog(module_env, tmp_path, monkeypatch):
    """What `systemctl status` shows, read from our own notify socket: READY, the link's state
    with the number of alerts waiting, and watchdog pings."""
    import socket
    import time
    hub, make_agent = module_env
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    got = []

    def drain(until, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got.extend(sock.recv(4096).decode().splitlines())
            except socket.timeout:
                pass
            if until():
                return True
        return False

    agent = make_agent()
    try:
        assert drain(lambda: "READY=1" in got and any(
            m.startswith("STATUS=online: connected to localhost") for m in got), 20 * SLOW), got
        assert any(m.startswith("STATUS=connecting to localhost") for m in got), got
        assert drain(lambda: any(m.endswith("alert(s) waiting to be sent") for m in got),
                     10 * SLOW), got
        assert drain(lambda: got.count("WATCHDOG=1") >= 2, 10 * SLOW), got
        hub.stop()
        assert drain(lambda: any(m.startswith("STATUS=offline since") for m in got),
                     30 * SLOW), got
    finally:
        sock.close()


def has_identity(conf, env=None):
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("IOTEDGE_", "GATEWAY_AGENT_", "EdgeHub", "EdgeModule"))}
    return subprocess.run(AGENT_CMD + ["--config", str(conf), "--has-identity"],
                          capture_output=True, text=True, timeout=60 * SLOW,
                          env=dict(clean, **(env or {})))


def test_has_identity_skips_only_a_conf_that_names_none(tmp_path):
    """The unit's ExecCondition=: 1 (start skipped, unit not failed) only while nothing names an
    identity, as in the packaged conf; a conf error is 0 so that the start reports it with 78."""
    packaged = (REPO / "config/gateway-agent.conf").read_text()
    placeholder = tmp_path / "placeholder.conf"
    placeholder.write_text(packaged)
    r = has_identity(placeholder)
    assert r.returncode == 1, r.stderr
    assert f"{placeholder} names no identity yet" in r.stderr
    assert "systemctl start gateway-agent" in r.stderr
    named = tmp_path / "named.conf"
    named.write_text(packaged.replace("#connection_string_file = ", "connection_string_file = "))
    assert named.read_text() != packaged
    assert has_identity(named).returncode == 0
    cs = "HostName=h.example;DeviceId=d;ModuleId=m;SharedAccessKey=a2V5a2V5a2V5a2V5"
    assert has_identity(placeholder, {"GATEWAY_AGENT_HUB_CONNECTION_STRING": cs}).returncode == 0
    auto = tmp_path / "auto.conf"
    auto.write_text(packaged.replace("identity = connection-string", "identity = auto"))
    assert auto.read_text() != packaged
    assert has_identity(auto).returncode == 1
    assert has_identity(auto, {"EdgeHubConnectionString": cs}).returncode == 0
    # Errors are the start's to report: the condition lets it run, and it exits 78.
    broken = tmp_path / "broken.conf"
    broken.write_text("[hub]\nport = many\n")
    assert has_identity(broken).returncode == 0
    assert has_identity(tmp_path / "missing.conf").returncode == 0
    r = subprocess.run(AGENT_CMD + ["--config", str(broken), "--allow-root"], capture_output=True,
                       text=True, timeout=60 * SLOW)
    assert r.returncode == 78, r.stderr
