"""Runs the real agent against the hub emulator (real mosquitto, TLS, SAS) for integration tests."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EMU = REPO / "tools" / "hub-emulator"
AGENT_CMD = os.environ.get("GA_AGENT_CMD", str(REPO / "build/native/src/gateway-agent")).split("|")
# The agent refuses to run as root without it (CI runs the tests as root).
ROOT_FLAG = ["--allow-root"] if os.geteuid() == 0 else []
SLOW = 4 if "qemu" in AGENT_CMD[0] else 1  # armhf under qemu-arm is slower
MODULE = "edgedev/filter"


def _run(args, timeout=60, check=True):
    r = subprocess.run([sys.executable] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{args[0]} {args[1:4]} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r


class Hub:
    """One emulator instance in its own directory."""

    def __init__(self, work: Path):
        self.dir = work / "hub"
        self.dir.mkdir(parents=True, exist_ok=True)

    # Starting mosquitto with the plugin and a fresh CA takes a second on an idle machine; the
    # bound is generous because a loaded one (load average 10+) was seen to need over 60 s.
    def start(self):
        _run([EMU / "hubemu", "start", "--dir", self.dir], timeout=180)
        self.port = int((self.dir / "port").read_text().strip())
        return self

    def stop(self):
        _run([EMU / "hubemu", "stop", "--dir", self.dir], check=False)

    def restart(self):
        _run([EMU / "hubemu", "restart", "--dir", self.dir], timeout=180)

    def ctl(self, *args, timeout=60, check=True):
        return _run([EMU / "hubctl", "--dir", self.dir] + list(args), timeout=timeout, check=check)

    def connstr(self, ident, gateway=None):
        extra = ["--gateway", gateway] if gateway else []
        return _run([EMU / "hubemu", "connstr", "--dir", self.dir, ident] + extra).stdout.strip()

    def twin(self, ident=MODULE):
        return json.loads(self.ctl("twin", "show", ident).stdout)

    def set_desired(self, patch, ident=MODULE):
        return self.ctl("twin", "set-desired", ident, json.dumps(patch))

    def method(self, name, payload=None, ident=MODULE, timeout=30):
        args = ["method", ident, name] + ([payload] if payload is not None else [])
        return json.loads(self.ctl(*args, "--timeout", str(timeout), timeout=timeout + 30).stdout)

    def messages(self, wait_count=0, timeout=30):
        args = ["messages"]
        if wait_count:
            args += ["--wait-count", str(wait_count), "--timeout", str(timeout)]
        r = self.ctl(*args, timeout=timeout + 30, check=False)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def send_input(self, body: bytes, ident=MODULE, input_name="input1"):
        f = self.dir / "input.bin"
        f.write_bytes(body)
        self.ctl("send-input", ident, input_name, "--file", f)


class Agent:
    """The real gateway-agent binary with a conf pointing at the emulator."""

    def __init__(self, work: Path, hub: Hub, **overrides):
        self.work = work
        self.hub = hub
        self.state = work / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.log_path = work / "agent.log"
        self.conf = work / "agent.conf"
        sections = {
            "hub": {"connection_string": hub.connstr(MODULE, gateway="localhost"),
                    "port": hub.port, "ca_file": hub.dir / "ca.pem", "sas_ttl": 3600},
            "reboot": {"mode": "simulate", "simulate_delay": 1},
            "state": {"dir": self.state},
            "log": {"stats_interval": 0},
        }
        for key, value in overrides.items():
            sect, k = key.split("__")
            sections.setdefault(sect, {})[k] = value
        lines = []
        for sect, kv in sections.items():
            lines.append(f"[{sect}]")
            lines += [f"{k} = {v}" for k, v in kv.items()]
        self.conf.write_text("\n".join(lines) + "\n")
        self.conf.chmod(0o600)  # it holds the connection string
        self.proc = None
        self.cmd_prefix = []  # e.g. a namespace wrapper; the agent keeps the pid (exec)

    def start(self, wait_online=True):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd_prefix + AGENT_CMD + ["--config", str(self.conf)] + ROOT_FLAG,
                                     stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        if wait_online:
            # agentStats is reported once the link is up, subscribed and has sent its twin GET.
            self.wait_for(lambda: self.hub.twin().get("reported", {}).get("agentStats"),
                          30 * SLOW, "agentStats reported after connect")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, needle, timeout=30, what=None):
        self.wait_for(lambda: needle in self.log(), timeout, what or f"log line '{needle}'")

    def wait_for(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"agent exited ({self.proc.returncode}) waiting for {what}:\n"
                                     + self.log()[-3000:])
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; agent log:\n" + self.log()[-3000:])

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        return self.proc.returncode if self.proc else None


def fresh_work(name: str) -> Path:
    base = Path(os.environ.get("GA_WORK_DIR", REPO / "build" / "it-work"))
    work = base / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def alert_bodies(msgs):
    return [m.get("body") for m in msgs if m.get("properties", {}).get("MessageType") == "Alert"]


# UDP sensor readings with a sequence number, and checks on the alerts they become upstream.
def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def reading(i, temp=30):
    return ('{"machine":{"temperature":%s},"seq":%d}' % (temp, i)).encode()


def seqs(msgs):
    return [json.loads(b)["seq"] for b in alert_bodies(msgs)]


def wait_for_all(hub, expected, timeout):
    """Upstream messages once every expected reading arrived at least once (re-sends count
    once, unlike hubctl's --wait-count), or when the time is up."""
    deadline = time.monotonic() + timeout
    want = set(expected)
    while True:
        msgs = hub.messages()
        if want <= set(seqs(msgs)) or time.monotonic() > deadline:
            return msgs
        time.sleep(1)


def assert_all_in_order(got, expected):
    """At least once: every expected alert arrives; duplicates only re-send a tail already sent."""
    assert sorted(set(got)) == expected, f"missing {sorted(set(expected) - set(got))}"
    firsts = []
    for s in got:
        if s not in firsts:
            firsts.append(s)
    assert firsts == expected, "first deliveries out of order"


# IoT Edge module identity (test_edge_module.py): the emulator's workload API on a Unix socket.
class WorkloadApi:
    """tools/hub-emulator/workload_api.py for one emulator: trust bundle = its CA, tokens signed
    with the keys it holds; faults set through its faults file; every request logged."""

    def __init__(self, hub: Hub, socket_path=None, genid=None):
        self.hub = hub
        # sun_path is 108 bytes: keep the socket path short, whatever the work dir is.
        self.socket = Path(socket_path) if socket_path else Path(
            "/tmp") / f"ga-wl-{os.getpid()}-{id(self) & 0xffff:x}.sock"
        self.faults_path = hub.dir / "workload.faults"
        self.log_path = hub.dir / "workload.log"
        self.genid = genid
        self.proc = None

    def start(self):
        self.faults_path.write_text("")
        args = [sys.executable, str(EMU / "workload_api.py"), "--dir", str(self.hub.dir),
                "--socket", str(self.socket)]
        if self.genid:
            args += ["--genid", self.genid]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(self.hub.dir / "workload.stderr", "ab"))
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("workload API did not start: " +
                                     (self.hub.dir / "workload.stderr").read_text()[-2000:])
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.socket.exists():
            self.socket.unlink()

    def set_faults(self, *rules):
        """Rules "ENDPOINT MODE [COUNT]" (see workload_api.py); none: no faults."""
        self.faults_path.write_text("".join(r + "\n" for r in rules))

    def requests(self, endpoint=None):
        """Logged requests; endpoint "sign" or "bundle" keeps only those."""
        if not self.log_path.exists():
            return []
        out = [json.loads(line) for line in self.log_path.read_text().splitlines() if line]
        if endpoint == "sign":
            return [r for r in out if r["path"].endswith("/sign")]
        if endpoint == "bundle":
            return [r for r in out if r["path"] == "/trust-bundle"]
        return out

    def env(self, **overrides):
        """The IOTEDGE_* set the edge runtime would give the module edgedev/filter."""
        conf = self.hub.dir / "emulator.conf"
        hub_host = next(line.split()[1] for line in conf.read_text().splitlines()
                        if line.startswith("hub "))
        dev, _, mod = MODULE.partition("/")
        e = {"IOTEDGE_WORKLOADURI": f"unix://{self.socket}", "IOTEDGE_AUTHSCHEME": "sasToken",
             "IOTEDGE_MODULEGENERATIONID": self.genid or "637899318049296327",
             "IOTEDGE_IOTHUBHOSTNAME": hub_host, "IOTEDGE_GATEWAYHOSTNAME": "localhost",
             "IOTEDGE_DEVICEID": dev, "IOTEDGE_MODULEID": mod,
             "IOTEDGE_APIVERSION": "2022-08-03", "RuntimeLogLevel": "info"}
        e.update(overrides)
        return {k: v for k, v in e.items() if v is not None}
