"""`gateway-agent check`: the real binary against the real emulator, healthy and with each fault
the issue names (wrong key, rogue CA, closed port, skewed clock, unwritable state dir), plus the
reboot path unit through a stand-in `systemctl` on PATH. One line per check, `OK`/`WARN`/`FAIL`/
`SKIP`, exit 1 on any FAIL, 78 for a conf that does not parse. The skewed clock is faked with
libfaketime (LD_PRELOAD) on the native binary only; read-only and small state dirs are private
tmpfs mounts in a mount namespace made for the check alone."""
import base64
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from harness import AGENT_CMD, EMU, MODULE, SLOW, Hub

NAMES = ["clock", "dns", "tcp", "tls", "connect", "subscribe", "twin", "reboot", "state"]
NETWORK = ["dns", "tcp", "tls", "connect", "subscribe", "twin"]
LINE = re.compile(r"^(OK|WARN|FAIL|SKIP) +(\S+) +(.*)$")
UNDER_QEMU = "qemu" in AGENT_CMD[0]

# libfaketime and the AddressSanitizer runtime both interpose at start-up and deadlock there.
WITH_ASAN = not UNDER_QEMU and b"__asan_init" in open(AGENT_CMD[-1], "rb").read()
needs_faketime = pytest.mark.skipif(
    UNDER_QEMU or WITH_ASAN or not shutil.which("faketime"),
    reason="the clock is faked with libfaketime (LD_PRELOAD), which reaches the native binary "
           "only, not one run by qemu-arm" if UNDER_QEMU else
           "libfaketime cannot be preloaded into an ASan build (both interpose at start-up)"
           if WITH_ASAN else "faketime is not installed (tools/install-deps.sh test)")
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="a private tmpfs needs root and unshare (CI runs as root)")


class Result:
    def __init__(self, rc, out, err):
        self.rc = rc
        self.out = out
        self.err = err
        self.lines = {}
        for line in self.out.splitlines():
            m = LINE.match(line)
            if m:
                assert m.group(2) not in self.lines, f"{m.group(2)} printed twice:\n{self.out}"
                self.lines[m.group(2)] = (m.group(1), m.group(3))

    def status(self, name):
        return self.lines[name][0]

    def detail(self, name):
        return self.lines[name][1]

    def __repr__(self):
        return f"exit {self.rc}\n{self.out}{self.err}"


def run_check(agent, prefix=(), env=None, timeout=90):
    # Its own process group: a wrapper (faketime, unshare, setpriv) and the check end together.
    proc = subprocess.Popen(list(prefix) + AGENT_CMD + ["check", "--config", str(agent.conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **(env or {})), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout * SLOW)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    r = Result(proc.returncode, out, err)
    # The stable shape: every check once, in order, then the counts.
    assert list(r.lines) == NAMES, r
    assert re.search(r"^result: \d+ OK, \d+ WARN, \d+ FAIL, \d+ SKIP$", r.out, re.M), r
    fails = [n for n in NAMES if r.status(n) == "FAIL"]
    assert r.rc == (1 if fails else 0), r
    # Never the secret: neither the key nor a token.
    key = re.search(r"SharedAccessKey=([^;\s]+)", agent.conf.read_text()).group(1)
    assert key not in r.out + r.err and "SharedAccessSignature" not in r.out + r.err, r
    return r


def connstr_with_key(hub, key):
    cs = hub.connstr(MODULE, gateway="localhost")
    return re.sub(r"SharedAccessKey=[^;]+", f"SharedAccessKey={key}", cs)


def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def in_private_tmpfs(agent, options):
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mount -t tmpfs -o {options} gatest "{agent.state}" && exec "$@"', "sh"]


def fake_systemctl(work, state, code):
    """A stand-in `systemctl` first on PATH that answers is-active with `state`."""
    bindir = work / "fakebin"
    bindir.mkdir(exist_ok=True)
    tool = bindir / "systemctl"
    tool.write_text(f"#!/bin/sh\n[ \"$1 $2\" = \"is-active gateway-agent-reboot.path\" ] || "
                    f"exit 64\necho {state}\nexit {code}\n")
    tool.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def test_healthy_emulator_every_check_passes(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False)
    r = run_check(agent)
    assert r.rc == 0, r
    for name in NETWORK + ["reboot", "state"]:
        assert r.status(name) == "OK", r
    # The machine running the tests may not run systemd-timesyncd: known-synchronised or a WARN.
    assert r.status("clock") in ("OK", "WARN"), r
    assert "CONNACK 0 as edgedev/filter" in r.detail("connect"), r
    assert r.detail("subscribe").startswith("4 filters granted (QoS 1,0,0,0)"), r
    assert r.detail("twin").startswith("status 200"), r
    assert str(agent.state) in r.detail("state") and "writable" in r.detail("state"), r


def test_wrong_key_fails_at_connack_not_authorized(module_env):
    hub, make_agent = module_env
    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    agent = make_agent(start=False, hub__connection_string=connstr_with_key(hub, wrong))
    r = run_check(agent)
    assert r.rc == 1, r
    assert [r.status(n) for n in ["dns", "tcp", "tls"]] == ["OK"] * 3, r
    assert r.status("connect") == "FAIL" and "not authorized" in r.detail("connect"), r
    assert "CONNACK 5" in r.detail("connect") and "fix: check SharedAccessKey" in r.out, r
    assert r.status("subscribe") == "SKIP" and r.status("twin") == "SKIP", r


def test_rogue_ca_fails_tls_naming_the_certificate(module_env):
    hub, make_agent = module_env
    rogue = hub.dir.parent / "rogue"
    rogue.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=rogue test CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout", str(rogue / "ca.key"), "-out", str(rogue / "ca.pem")],
                   check=True, capture_output=True, timeout=60)
    agent = make_agent(start=False, hub__ca_file=rogue / "ca.pem")
    r = run_check(agent)
    assert r.rc == 1, r
    assert r.status("dns") == "OK" and r.status("tcp") == "OK", r
    assert r.status("tls") == "FAIL", r
    assert "certificate not trusted" in r.detail("tls"), r
    assert "not correctly signed by the trusted CA" in r.detail("tls"), r
    assert f"fix: set [hub] ca_file to the CA that signed" in r.detail("tls"), r
    assert str(rogue / "ca.pem") in r.detail("tls"), r
    for name in ["connect", "subscribe", "twin"]:
        assert r.status(name) == "SKIP", r
    # The checks that do not need the hub still run.
    assert r.status("state") == "OK" and r.status("reboot") == "OK", r


def test_closed_port_fails_tcp(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False, hub__port=closed_port())
    r = run_check(agent)
    assert r.rc == 1, r
    assert r.status("dns") == "OK", r
    assert r.status("tcp") == "FAIL" and "Connection refused" in r.detail("tcp"), r
    assert "is the hub (or edgeHub) listening on" in r.detail("tcp"), r
    for name in ["tls", "connect", "subscribe", "twin"]:
        assert r.status(name) == "SKIP", r


def test_silent_server_fails_tls_within_the_step_bound(module_env):
    """A port that completes TCP (the kernel's backlog) but never answers the TLS handshake."""
    hub, make_agent = module_env
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        agent = make_agent(start=False, hub__port=silent.getsockname()[1])
        t0 = time.monotonic()
        r = run_check(agent)
        elapsed = time.monotonic() - t0
    finally:
        silent.close()
    assert r.rc == 1, r
    assert r.status("tcp") == "OK", r
    assert r.status("tls") == "FAIL" and "timed out" in r.detail("tls"), r
    assert elapsed < 10 + 10 * SLOW, f"{elapsed:.1f} s: the TLS step is bounded by 10 s"


def test_unresolvable_host_fails_dns(module_env):
    hub, make_agent = module_env
    cs = hub.connstr(MODULE, gateway="gateway-agent-check.invalid")  # RFC 6761: never resolves
    agent = make_agent(start=False, hub__connection_string=cs)
    r = run_check(agent)
    assert r.rc == 1, r
    assert r.status("dns") == "FAIL" and "gateway-agent-check.invalid" in r.detail("dns"), r
    assert all(r.status(n) == "SKIP" for n in NETWORK[1:]), r


@needs_faketime
def test_clock_before_any_valid_time_fails_the_clock_check(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False)
    r = run_check(agent, prefix=["faketime", "-f", "@2020-01-01 00:00:00"],
                  env={"FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    assert r.rc == 1, r
    assert r.status("clock") == "FAIL" and "2020-01-01T" in r.detail("clock"), r
    assert "fix: set the time" in r.detail("clock"), r
    # The network checks still run; the certificate is from "the future".
    assert r.status("tls") == "FAIL" and "clock" in r.detail("tls"), r


@needs_faketime
def test_clock_two_days_behind_fails_tls_naming_the_clock(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False)
    r = run_check(agent, prefix=["faketime", "-f", "-2d"],
                  env={"FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    assert r.rc == 1, r
    assert r.status("tcp") == "OK", r
    assert r.status("tls") == "FAIL", r
    assert "is the clock behind?" in r.detail("tls") and "validity starts in the future" in r.out, r


@needs_faketime
def test_clock_hours_behind_fails_connack_with_an_expired_token(module_env):
    """Certificates a day old (made under faketime), the check's clock 3 h behind with a 1 h
    token: TLS passes, the hub refuses the already expired token (CONNACK 5)."""
    hub, make_agent = module_env
    hub.stop()
    old = Hub(hub.dir.parent / "backdated")
    # Only the emulator's own certificate making runs a day back (its openssl calls inherit the
    # fake clock); the emulator then starts in real time and keeps them.
    make_certs = ("import importlib.machinery, sys; importlib.machinery.SourceFileLoader("
                  "'hubemu', sys.argv[1]).load_module().ensure_certs(sys.argv[2])")
    subprocess.run(["faketime", "-f", "-1d", sys.executable, "-c", make_certs,
                    str(EMU / "hubemu"), str(old.dir)], check=True, capture_output=True,
                   timeout=120)
    try:
        old.start()
        agent = make_agent(start=False, hub__connection_string=old.connstr(MODULE, "localhost"),
                           hub__port=old.port, hub__ca_file=old.dir / "ca.pem")
        r = run_check(agent, prefix=["faketime", "-f", "-3h"],
                      env={"FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    finally:
        old.stop()
    assert r.rc == 1, r
    assert r.status("tls") == "OK", r
    assert r.status("connect") == "FAIL" and "not authorized (CONNACK 5)" in r.detail("connect"), r
    assert "clock is behind" in r.detail("connect"), r


@needs_root
def test_read_only_state_dir_fails(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False)
    r = run_check(agent, prefix=in_private_tmpfs(agent, "ro,size=64k"))
    assert r.rc == 1, r
    assert r.status("state") == "FAIL" and "Read-only file system" in r.detail("state"), r
    assert all(r.status(n) == "OK" for n in NETWORK), r


@needs_root
def test_small_state_dir_warns_about_free_space(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False)
    r = run_check(agent, prefix=in_private_tmpfs(agent, "size=1m"))
    assert r.rc == 0, r
    assert r.status("state") == "WARN" and "below 16 MiB" in r.detail("state"), r


def test_state_dir_that_is_a_file_fails(module_env):
    hub, make_agent = module_env
    blocker = hub.dir.parent / "not-a-dir"
    blocker.write_text("")
    agent = make_agent(start=False, state__dir=blocker)
    r = run_check(agent)
    assert r.rc == 1, r
    assert r.status("state") == "FAIL" and "Not a directory" in r.detail("state"), r


def test_state_dir_without_write_permission_fails(module_env):
    """As the service's user would see it: root writes anywhere, so as root the check runs as
    nobody (setpriv), owning the conf and a state dir it may read but not write."""
    hub, make_agent = module_env
    agent = make_agent(start=False)
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root and setpriv (util-linux) is not installed")
        nobody = 65534
        os.chown(agent.conf, nobody, nobody)
        os.chown(agent.state, nobody, nobody)
        prefix = ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups"]
        # A tree under a 0700 home (/root on a fresh Debian) is out of nobody's reach: then this
        # case cannot be seen from there, and says so instead of failing on the wrong thing.
        reach = subprocess.run(prefix + ["sh", "-c", 'test -x "$1" && test -r "$2"', "_",
                                         AGENT_CMD[-1], str(agent.conf)])
        if reach.returncode != 0:
            pytest.skip(f"nobody cannot reach {AGENT_CMD[-1]} or {agent.conf} (a 0700 parent)")
    agent.state.chmod(0o500)
    try:
        r = run_check(agent, prefix=prefix)
    finally:
        agent.state.chmod(0o700)
    assert r.rc == 1, r
    assert r.status("state") == "FAIL" and "Permission denied" in r.detail("state"), r
    assert "fix: make " in r.detail("state") and "(checked as root)" not in r.out, r
    assert all(r.status(n) == "OK" for n in NETWORK), r


@pytest.mark.parametrize("state,code,expect", [("active", 0, "OK"), ("inactive", 3, "FAIL")])
def test_reboot_path_unit_state(module_env, state, code, expect):
    hub, make_agent = module_env
    agent = make_agent(start=False, reboot__mode="request-file")
    r = run_check(agent, env=fake_systemctl(agent.work, state, code))
    assert r.status("reboot") == expect, r
    assert f"gateway-agent-reboot.path is {state}" in r.detail("reboot"), r
    if expect == "FAIL":
        assert "fix: systemctl enable --now gateway-agent-reboot.path" in r.detail("reboot"), r


def test_reboot_without_systemctl_warns(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False, reboot__mode="request-file")
    empty = agent.work / "emptybin"
    empty.mkdir()
    # PATH without systemctl; qemu-arm (when used) is named by an absolute path.
    r = run_check(agent, env={"PATH": str(empty)})
    assert r.rc == 0, r
    assert r.status("reboot") == "WARN" and "systemctl not found" in r.detail("reboot"), r


def test_conf_that_does_not_parse_exits_78(module_env):
    hub, make_agent = module_env
    agent = make_agent(start=False)
    agent.conf.write_text(agent.conf.read_text().replace("sas_ttl = 3600", "sas_ttl = soon"))
    proc = subprocess.run(AGENT_CMD + ["check", "--config", str(agent.conf)],
                          capture_output=True, text=True, timeout=60 * SLOW)
    assert proc.returncode == 78, proc
    assert "sas_ttl" in proc.stderr and proc.stdout == "", proc
