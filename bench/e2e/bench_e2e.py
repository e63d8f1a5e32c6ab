#!/usr/bin/env python3
"""End-to-end bench: our gateway-agent vs the Azure IoT Node.js SDK running the IoT Edge
filter-module tutorial logic vs the emulator alone (a plain subscriber), in one run, on one hub
emulator, with the same sensor stream. See bench/e2e/README.md.

    /usr/bin/python3 bench/e2e/bench_e2e.py --out /tmp/e2e --count 20000

Starts and stops its own emulator in OUT/hub; every wait is bounded; the processes it started are
stopped in a finally block. Exit status: 0 all good, 1 a target lost alerts, died or miscounted,
2 the bench could not run.
"""

import argparse
import datetime
import glob
import json
import os
import random
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EMU = os.path.join(REPO, "tools", "hub-emulator")
sys.path.insert(0, EMU)
import hubemu_lib as lib  # noqa: E402

MODULE = "edgedev/filter"
SENSOR = "edgedev/tempSensor"
SENSOR_TOPIC = ("devices/edgedev/modules/tempSensor/messages/events/%24.ct=application%2Fjson&"
                "%24.ce=utf-8&%24.on=temperatureOutput")
INPUT_FILTER = "devices/edgedev/modules/filter/inputs/input1/#"
THRESHOLD = 25.0
MARKER = "bench-e2e.marker"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def root_flag(binary):
    """--allow-root when running as root and the binary knows it (older builds did not refuse)."""
    if os.geteuid() != 0:
        return []
    helptext = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    return ["--allow-root"] if "--allow-root" in helptext else []


class BenchError(Exception):
    """The bench itself cannot go on (exit 2)."""


def log(msg):
    sys.stderr.write(time.strftime("%H:%M:%S ") + msg + "\n")
    sys.stderr.flush()


# -- /proc -------------------------------------------------------------------------------------
def cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # fields 14 and 15 of stat(5)


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def read_counter(path):
    try:
        with open(path, "rb") as f:
            b = f.read(8)
        return struct.unpack("<Q", b)[0] if len(b) == 8 else None
    except OSError:
        return None


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


# -- the sensor stream -------------------------------------------------------------------------
class Stream:
    """The same readings for every target: temperature i is fixed by the seed, hot or cold well
    away from the threshold (hot 26..35, cold 15..24), so every filter decides the same."""

    def __init__(self, n, hot_share, seed):
        rnd = random.Random(seed)
        self.temps = []
        for _ in range(n):
            if rnd.random() < hot_share:
                self.temps.append(round(rnd.uniform(26.0, 35.0), 2))
            else:
                self.temps.append(round(rnd.uniform(15.0, 24.0), 2))

    def hot(self, i):
        return self.temps[i % len(self.temps)] > THRESHOLD


def body(temp, run, seq):
    return ('{"machine":{"temperature":%.2f,"pressure":1.0418},"ambient":{"temperature":21.37,'
            '"humidity":25},"timeCreated":"2026-01-01T00:00:00.0000000Z","run":"%s","seq":%d,'
            '"sent_ns":%d}' % (temp, run, seq, time.time_ns())).encode()


class Sensor:
    """The tempSensor module: QoS 1 publishes with up to `window` not yet acknowledged."""

    def __init__(self, hubdir, window):
        self.c = lib.connect_identity(hubdir, SENSOR, timeout=30, keepalive=0)
        self.window = window
        self.outstanding = 0
        self.mid = 0
        self.sent = 0

    def send(self, payload, timeout=60):
        self.mid = self.mid % 65535 + 1
        self.c._send(0x32, lib._enc_str(SENSOR_TOPIC) + struct.pack("!H", self.mid) + payload)
        self.outstanding += 1
        self.sent += 1
        deadline = time.monotonic() + timeout
        while self.outstanding >= self.window:
            self._ack(deadline)

    def flush(self, timeout=60):
        deadline = time.monotonic() + timeout
        while self.outstanding > 0:
            self._ack(deadline)

    def _ack(self, deadline):
        if time.monotonic() > deadline:
            raise BenchError("the broker stopped acknowledging the sensor")
        ptype, _ = self.c._read_packet(deadline)
        if ptype == 4:
            self.outstanding -= 1

    def close(self):
        self.c.disconnect()


# -- what arrived upstream ---------------------------------------------------------------------
class Upstream:
    """Tails DIR/messages.jsonl, which the emulator appends to every 200 ms. Each record has the
    hub's receive time ("time", ms resolution, CLOCK_REALTIME); the body carries run, seq and
    sent_ns (time.time_ns() when the sensor wrote it)."""

    def __init__(self, path):
        self.path = path
        self.off = 0
        self.partial = b""
        self.runs = {}  # run -> {seq: first upstream time ns}
        self.dups = {}
        self.sent_ns = {}  # (run, seq) -> sent_ns
        self.props_bad = 0
        self.other = 0

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except FileNotFoundError:
            return
        self.off += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if line.strip():
                self._record(json.loads(line))

    def _record(self, rec):
        try:
            b = json.loads(rec.get("body") or "null")
            run, seq, sent = b["run"], b["seq"], b["sent_ns"]
        except (ValueError, TypeError, KeyError):
            self.other += 1
            return
        t = datetime.datetime.fromisoformat(rec["time"].replace("Z", "+00:00"))
        t_ns = int(round(t.timestamp() * 1000)) * 1_000_000
        if rec.get("properties", {}).get("MessageType") != "Alert":
            self.props_bad += 1
        seqs = self.runs.setdefault(run, {})
        if seq in seqs:
            self.dups[run] = self.dups.get(run, 0) + 1
            return
        seqs[seq] = t_ns
        self.sent_ns[(run, seq)] = sent

    def count(self, run):
        return len(self.runs.get(run, {}))


# -- targets -----------------------------------------------------------------------------------
class Target:
    name = ""
    forwards = True

    def __init__(self, bench):
        self.b = bench
        self.proc = None
        self.logf = None
        self.malloc_file = None

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.logf:
            self.logf.close()
            self.logf = None
        return self.proc.returncode

    def env_with_shim(self, extra=None):
        env = dict(os.environ)
        env.update(extra or {})
        if self.b.shim:
            self.malloc_file = os.path.join(self.b.out, f"malloc-{self.name}.count")
            if os.path.exists(self.malloc_file):
                os.unlink(self.malloc_file)
            env["LD_PRELOAD"] = self.b.shim
            env["MALLOC_COUNT_FILE"] = self.malloc_file
        return env

    def mallocs(self):
        return read_counter(self.malloc_file) if self.malloc_file else None

    # probes: a hot reading in run "<name>/probe"; seen when its alert is upstream
    def probe_seen(self, k, deadline):
        run = self.name + "/probe"
        while time.monotonic() < deadline:
            self.b.up.poll()
            if k in self.b.up.runs.get(run, {}):
                return True
            if not self.alive():
                raise BenchError(f"{self.name} exited ({self.proc.returncode}); see its log")
            time.sleep(0.05)
        return False


class AgentTarget(Target):
    """Our gateway-agent. `name` is "agent" (the --agent binary) or "agent-before" (the
    --agent-before binary: an older build run as its own target, same workload)."""
    name = "agent"

    def __init__(self, bench, name="agent", binary=None):
        super().__init__(bench)
        self.name = name
        self.binary = binary or bench.agent

    def start(self):
        b = self.b
        d = os.path.join(b.out, self.name)
        os.makedirs(os.path.join(d, "state"), exist_ok=True)
        conf = os.path.join(d, "agent.conf")
        with open(conf, "w") as f:
            f.write("[hub]\n"
                    f"connection_string = {b.connstr(MODULE, 'localhost')}\n"
                    f"port = {b.port}\nca_file = {b.hubdir}/ca.pem\nsas_ttl = 3600\n"
                    "[reboot]\nmode = simulate\nsimulate_delay = 1\n"
                    f"[state]\ndir = {d}/state\n"
                    "[log]\nstats_interval = 1\n")
        os.chmod(conf, 0o600)
        self.logf = open(os.path.join(d, "agent.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "--config", conf] + root_flag(self.binary),
                                     stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=self.env_with_shim())

    def stats(self):
        tw = self.b.twin()
        return (tw.get("reported") or {}).get("agentStats") or {}

    def wait_stats(self, received=None, timeout=20):
        """agentStats (reported every second) once messagesReceived == received, or, without
        received, once it has not moved for 1.2 s (probes sent before the agent subscribed were
        never delivered to it, so the count of readings sent is not the count it got)."""
        deadline = time.monotonic() + timeout
        s, prev = {}, None
        while time.monotonic() < deadline:
            s = self.stats()
            got = s.get("messagesReceived")
            if received is not None and got == received:
                return s
            if received is None and got is not None and got == prev:
                return s
            prev = got
            time.sleep(1.2 if received is None else 0.3)
        log(f"{self.name}: messagesReceived {s.get('messagesReceived')}, waited for "
            f"{received if received is not None else 'a stable value'}")
        return s


class NodeTarget(Target):
    name = "node"

    def start(self):
        b = self.b
        d = os.path.join(b.out, "node")
        os.makedirs(d, exist_ok=True)
        self.logf = open(os.path.join(d, "node.log"), "ab")
        env = self.env_with_shim({"NODE_PATH": b.node_modules})
        cs = b.connstr(MODULE, f"localhost:{b.port}")
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "node_filter.js"), cs,
                                      os.path.join(b.hubdir, "ca.pem"), str(THRESHOLD)],
                                     stdout=subprocess.PIPE, stderr=self.logf, env=env)
        if not wait_line(self.proc, "ready", 60):
            raise BenchError("node_filter.js did not open its client within 60 s; see node/node.log")


class EmulatorTarget(Target):
    """A plain subscriber on filter/inputs/input1 (this script in --null-subscriber mode, its own
    process): acknowledges every input and forwards nothing."""
    name = "emulator"
    forwards = False

    def start(self):
        b = self.b
        d = os.path.join(b.out, "emulator")
        os.makedirs(d, exist_ok=True)
        self.data = os.path.join(d, "received.tsv")
        self.logf = open(os.path.join(d, "subscriber.log"), "ab")
        self.proc = subprocess.Popen([sys.executable, os.path.realpath(__file__),
                                      "--null-subscriber", b.hubdir, self.data],
                                     stdout=subprocess.PIPE, stderr=self.logf)
        if not wait_line(self.proc, "ready", 30):
            raise BenchError("the null subscriber did not subscribe within 30 s")

    def probe_seen(self, k, deadline):
        want = f"probe {k}"
        while time.monotonic() < deadline:
            line = read_line(self.proc, deadline)
            if line is None:
                break
            if line == want:
                return True
        if not self.alive():
            raise BenchError(f"the null subscriber exited ({self.proc.returncode})")
        return False

    def finish(self):
        """Stops the subscriber (a stop reading) and reads what it received."""
        self.b.sensor.send(b'{"stop":true}')
        self.b.sensor.flush()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        recv = {}
        with open(self.data) as f:
            for line in f:
                t, _, text = line.rstrip("\n").partition("\t")
                try:
                    bd = json.loads(text)
                    recv.setdefault(bd["run"], {})[bd["seq"]] = (int(t), bd["sent_ns"])
                except (ValueError, KeyError, TypeError):
                    pass
        return recv


def read_line(proc, deadline):
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        r, _, _ = select.select([proc.stdout], [], [], min(remaining, 0.5))
        if r:
            line = proc.stdout.readline()
            if not line:
                return None
            return line.decode(errors="replace").strip()
        if proc.poll() is not None:
            return None


def wait_line(proc, want, timeout):
    deadline = time.monotonic() + timeout
    while True:
        line = read_line(proc, deadline)
        if line is None:
            return False
        if line == want:
            return True


def null_subscriber(hubdir, data_path):
    """--null-subscriber mode: subscribe to the filter input, acknowledge, forward nothing. Keeps
    (receive time, body) in memory and writes them at the stop reading."""
    c = lib.connect_identity(hubdir, MODULE, clean=True, timeout=30, keepalive=0)
    c.subscribe([INPUT_FILTER])
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    got = []
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        m = c.receive(deadline)
        if m is None:
            break
        t = time.time_ns()
        payload = m[1]
        if payload == b'{"stop":true}':
            break
        got.append((t, payload))
        if b'/probe"' in payload:
            seq = json.loads(payload)["seq"]
            sys.stdout.write(f"probe {seq}\n")
            sys.stdout.flush()
    with open(data_path, "w") as f:
        for t, p in got:
            f.write(f"{t}\t{p.decode(errors='replace')}\n")
    c.disconnect()


# -- the bench ---------------------------------------------------------------------------------
class Bench:
    def __init__(self, a):
        self.a = a
        self.out = os.path.abspath(a.out)
        self.hubdir = os.path.join(self.out, "hub")
        self.emu = [sys.executable, os.path.join(EMU, "hubemu")]
        self.ctl = [sys.executable, os.path.join(EMU, "hubctl"), "--dir", self.hubdir]
        self.stream = Stream(a.count, a.hot, a.seed)
        self.shim = None
        self.agent_before = None
        self.sensor = None
        self.up = None
        self.hub_started = False
        self.probe_k = 0

    # setup
    def prepare(self):
        a = self.a
        if os.path.exists(self.out):
            if not os.path.exists(os.path.join(self.out, MARKER)):
                raise BenchError(f"{self.out} exists and was not made by bench_e2e.py")
            shutil.rmtree(self.out)
        os.makedirs(self.out)
        open(os.path.join(self.out, MARKER), "w").close()
        agent = os.path.abspath(a.agent)
        if not os.access(agent, os.X_OK):
            raise BenchError(f"no agent binary at {agent}")
        self.agent = os.path.join(self.out, "gateway-agent")
        shutil.copy2(agent, self.agent)
        if "agent-before" in self.targets():
            if not a.agent_before:
                raise BenchError("target agent-before needs --agent-before PATH")
            before = os.path.abspath(a.agent_before)
            if not os.access(before, os.X_OK):
                raise BenchError(f"no agent binary at {before}")
            self.agent_before = os.path.join(self.out, "gateway-agent-before")
            shutil.copy2(before, self.agent_before)
        plugin = a.plugin or os.environ.get("GA_HUB_EMULATOR_PLUGIN") or os.path.join(
            REPO, "build", "native", "tools", "hub-emulator", "hub_emulator_plugin.so")
        if not os.path.exists(plugin):
            raise BenchError(f"no emulator plugin at {plugin}")
        self.plugin = os.path.join(self.out, "hub_emulator_plugin.so")
        shutil.copy2(plugin, self.plugin)
        if not a.no_malloc_count:
            so = os.path.join(self.out, "malloc_count.so")
            r = subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", so,
                                os.path.join(HERE, "malloc_count.c")],
                               capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                raise BenchError("cannot build malloc_count.so:\n" + r.stderr)
            self.shim = so
        if "node" in self.targets():
            self.node_modules = self.find_node_modules()

    def targets(self):
        spec = self.a.targets
        if spec is None:  # default: emulator, agent-before (with --agent-before), agent, node
            spec = "emulator,agent-before,agent,node" if self.a.agent_before else "emulator,agent,node"
        return [t.strip() for t in spec.split(",") if t.strip()]

    def find_node_modules(self):
        if self.a.node_modules:
            nm = os.path.abspath(self.a.node_modules)
            if not os.path.isdir(os.path.join(nm, "azure-iot-device-mqtt")):
                raise BenchError(f"{nm} holds no azure-iot-device-mqtt")
            return nm
        lock = os.path.join(REPO, "tests", "sdk", "package-lock.json")
        with open(lock, "rb") as f:
            want = f.read()
        # the sdk.node ctest's install, when it matches tests/sdk/package-lock.json
        for nm in sorted(glob.glob(os.path.join(REPO, "build", "*", "tests", "sdk", "work",
                                                "sdk-node", "node_modules"))):
            src = os.path.join(nm, ".package-lock.json.src")
            if os.path.isdir(os.path.join(nm, "azure-iot-device-mqtt")) and os.path.exists(src):
                with open(src, "rb") as f:
                    if f.read() == want:
                        return nm
        d = os.path.join(self.out, "sdk-node")
        os.makedirs(d)
        for n in ("package.json", "package-lock.json"):
            shutil.copy2(os.path.join(REPO, "tests", "sdk", n), d)
        log("npm ci of tests/sdk (azure-iot-device, azure-iot-device-mqtt) into OUT/sdk-node")
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=d,
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise BenchError("npm ci failed (registry unreachable?):\n" + r.stderr[-2000:])
        return os.path.join(d, "node_modules")

    def start_hub(self):
        r = subprocess.run(self.emu + ["start", "--dir", self.hubdir, "--plugin", self.plugin],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise BenchError("hubemu start failed:\n" + r.stderr + r.stdout)
        self.hub_started = True
        self.port = lib.read_port(self.hubdir)
        with open(os.path.join(self.hubdir, "mosquitto.pid")) as f:
            self.broker_pid = int(f.read().strip())
        self.up = Upstream(os.path.join(self.hubdir, "messages.jsonl"))
        self.sensor = Sensor(self.hubdir, self.a.window)

    def stop_hub(self):
        if self.sensor:
            try:
                self.sensor.close()
            except Exception:  # noqa: BLE001 - best effort at the end
                pass
        if self.hub_started:
            subprocess.run(self.emu + ["stop", "--dir", self.hubdir], capture_output=True,
                           timeout=60)

    def connstr(self, ident, gateway):
        r = subprocess.run(self.emu + ["connstr", "--dir", self.hubdir, ident, "--gateway",
                                       gateway], capture_output=True, text=True, timeout=30,
                           check=True)
        return r.stdout.strip()

    def twin(self):
        r = subprocess.run(self.ctl + ["twin", "show", MODULE], capture_output=True, text=True,
                           timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 else {}

    def clear_session(self):
        """Drops the filter's persistent session (and its subscriptions) between targets, and the
        previous target's reported agentStats (a JSON merge patch with null): the twin merges
        reported patches, so an agent that does not report a key (an older build without
        storeCommits) would otherwise show the previous agent's stale value."""
        c = lib.connect_identity(self.hubdir, MODULE, clean=True, timeout=30)
        c.publish("$iothub/twin/PATCH/properties/reported/?$rid=bench-e2e-clear",
                  b'{"agentStats":null}', qos=1)
        c.disconnect()

    # phases
    def probe(self, t, attempts=60):
        """Sends hot probe readings until one comes through the target (it is subscribed)."""
        for _ in range(attempts):
            self.probe_k += 1
            k = self.probe_k
            self.sensor.send(body(30.0, t.name + "/probe", k))
            self.sensor.flush()
            if t.probe_seen(k, time.monotonic() + 2.0):
                return
        raise BenchError(f"{t.name}: no probe came through in {attempts} tries")

    def wait_upstream(self, t, run, want, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.up.poll()
            if self.up.count(run) >= want:
                return True
            if not t.alive():
                return False
            time.sleep(0.05)
        self.up.poll()
        return self.up.count(run) >= want

    def snapshot(self, t):
        ru = resource.getrusage(resource.RUSAGE_SELF)
        s = {"mono": time.monotonic(), "cpu": cpu_ticks(t.pid), "broker_cpu":
             cpu_ticks(self.broker_pid), "mallocs": t.mallocs(),
             "sensor_cpu": ru.ru_utime + ru.ru_stime}
        return s

    def run_phase(self, t, kind):
        """kind 'u': the whole stream, unpaced (window only); 'p': paced at --rate."""
        a = self.a
        run = f"{t.name}/{kind}"
        n = a.count if kind == "u" else int(a.rate * a.paced_seconds)
        hot_seqs = [i for i in range(n) if self.stream.hot(i)]
        stats0 = t.wait_stats() if isinstance(t, AgentTarget) else None
        s0 = self.snapshot(t)
        t0_ns = time.time_ns()
        hot_sent = 0
        throttled_s = 0.0
        steady = []  # (sent, mallocs) inside the paced phase
        marks = {int(a.rate * 2), int(n - a.rate)} if kind == "p" and n > 3 * a.rate else set()
        start = time.monotonic()
        for i in range(n):
            if kind == "p":
                due = start + i / a.rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                if i in marks:
                    steady.append((i, t.mallocs()))
            elif (t.forwards and i % 200 == 0 and hot_sent - self.up.count(run) > a.max_in_flight // 2
                  and (self.up.poll() or True) and hot_sent - self.up.count(run) > a.max_in_flight // 2):
                # never let the broker's queue for the target reach max_queued_messages (10000):
                # that would measure the emulator's limit, not the target
                ts = time.monotonic()
                dl = ts + 120
                while hot_sent - self.up.count(run) > a.max_in_flight // 4 and time.monotonic() < dl:
                    time.sleep(0.02)
                    self.up.poll()
                    if not t.alive():
                        break
                throttled_s += time.monotonic() - ts
            temp = self.stream.temps[i % len(self.stream.temps)]
            self.sensor.send(body(temp, run, i))
            if temp > THRESHOLD:
                hot_sent += 1
        self.sensor.flush()
        sensor_s = time.monotonic() - start
        # all through: every hot reading upstream (or, for the plain subscriber, a probe after)
        drain_timeout = max(60.0, n / 200.0)
        if t.forwards:
            complete = self.wait_upstream(t, run, len(hot_seqs), drain_timeout)
        else:
            self.probe_k += 1
            self.sensor.send(body(30.0, t.name + "/probe", self.probe_k))
            self.sensor.flush()
            complete = t.probe_seen(self.probe_k, time.monotonic() + drain_timeout)
        s1 = self.snapshot(t)
        stats1 = (t.wait_stats(stats0.get("messagesReceived", 0) + n)
                  if isinstance(t, AgentTarget) else None)
        return {"run": run, "n": n, "hot": len(hot_seqs), "hot_seqs": hot_seqs, "t0_ns": t0_ns,
                "s0": s0, "s1": s1, "sensor_s": sensor_s, "throttled_s": throttled_s,
                "complete": complete, "steady": steady, "stats0": stats0, "stats1": stats1}

    def run_target(self, t):
        log(f"--- {t.name}")
        self.clear_session()
        t.start()
        self.probe(t)
        # warm-up: 1000 readings of the stream (JIT, caches, connections), drained
        w = t.name + "/w"
        for i in range(1000):
            self.sensor.send(body(self.stream.temps[i], w, i))
        self.sensor.flush()
        if t.forwards:
            self.wait_upstream(t, w, sum(1 for i in range(1000) if self.stream.hot(i)), 60)
        else:
            self.probe(t)
        phases = {}
        for kind in ("u", "p"):
            log(f"{t.name}: phase {'unpaced' if kind == 'u' else 'paced'}")
            phases[kind] = self.run_phase(t, kind)
            time.sleep(0.5)
        hwm = status_kb(t.pid, "VmHWM") if t.alive() else None
        rss = status_kb(t.pid, "VmRSS") if t.alive() else None
        alive = t.alive()
        recv = t.finish() if isinstance(t, EmulatorTarget) else None
        rc = t.stop()
        return {"phases": phases, "vmhwm_kb": hwm, "vmrss_kb": rss, "alive_at_end": alive,
                "exit_code": rc, "recv": recv}

    # results
    def summarize(self, t, res):
        out = {"target": t.name, "peak_rss_kb": res["vmhwm_kb"], "rss_end_kb": res["vmrss_kb"],
               "exit_code": res["exit_code"], "alive_at_end": res["alive_at_end"], "phases": {}}
        problems = []
        if not res["alive_at_end"]:
            problems.append(f"{t.name} died during the run")
        if t.name != "emulator" and res["exit_code"] not in (0, -signal.SIGTERM):
            problems.append(f"{t.name} exit code {res['exit_code']}")
        for kind, ph in res["phases"].items():
            run = ph["run"]
            n = ph["n"]
            s0, s1 = ph["s0"], ph["s1"]
            p = {"readings": n, "hot": ph["hot"], "sensor_s": round(ph["sensor_s"], 3),
                 "sensor_per_s": round(n / ph["sensor_s"]), "sensor_throttled_s":
                 round(ph["throttled_s"], 3), "complete": ph["complete"]}
            lat = []
            if t.forwards:
                seqs = self.up.runs.get(run, {})
                hot = set(ph["hot_seqs"])
                got = [s for s in seqs if s in hot]
                lost = sorted(hot - set(seqs))
                p["alerts_upstream"] = len(got)
                p["alerts_lost"] = len(lost)
                p["lost_seqs_first"] = lost[:20]
                p["alerts_unexpected"] = len([s for s in seqs if s not in hot])
                p["alerts_duplicate"] = self.up.dups.get(run, 0)
                for s in got:
                    lat.append(seqs[s] - self.up.sent_ns[(run, s)])
                last_ns = max(seqs.values()) if seqs else None
                if lost:
                    problems.append(f"{t.name}/{kind}: {len(lost)} alerts lost")
                if p["alerts_unexpected"]:
                    problems.append(f"{t.name}/{kind}: {p['alerts_unexpected']} unexpected alerts")
                p["latency_resolution"] = "1 ms (emulator record time), send -> upstream"
            else:
                r = res["recv"].get(run, {}) if res["recv"] else {}
                p["received"] = len(r)
                p["lost"] = n - len(r)
                lat = [tr - ts for tr, ts in r.values()]
                last_ns = max(tr for tr, _ in r.values()) if r else None
                if p["lost"]:
                    problems.append(f"emulator/{kind}: {p['lost']} readings not delivered")
                p["latency_resolution"] = "ns, send -> received by the plain subscriber"
            if last_ns:
                span = (last_ns - ph["t0_ns"]) / 1e9
                p["through_s"] = round(span, 3)
                p["messages_per_s"] = round(n / span)
                if t.forwards:
                    p["alerts_per_s"] = round(p["alerts_upstream"] / span)
            lat.sort()
            if lat:
                p["latency_ms"] = {"p50": round(pct(lat, 50) / 1e6, 2),
                                   "p99": round(pct(lat, 99) / 1e6, 2),
                                   "max": round(lat[-1] / 1e6, 2), "n": len(lat)}
            cpu_s = (s1["cpu"] - s0["cpu"]) / CLK_TCK
            p["cpu_s"] = round(cpu_s, 3)
            p["cpu_us_per_msg"] = round(cpu_s * 1e6 / n, 1)
            p["broker_cpu_us_per_msg"] = round((s1["broker_cpu"] - s0["broker_cpu"]) / CLK_TCK
                                               * 1e6 / n, 1)
            p["sensor_cpu_us_per_msg"] = round((s1["sensor_cpu"] - s0["sensor_cpu"]) * 1e6 / n, 1)
            if s0["mallocs"] is not None and s1["mallocs"] is not None:
                p["mallocs_delta"] = s1["mallocs"] - s0["mallocs"]
                p["mallocs_per_msg_phase"] = round((s1["mallocs"] - s0["mallocs"]) / n, 2)
            st = ph["steady"]
            if len(st) == 2 and st[0][1] is not None and st[1][1] is not None:
                p["mallocs_per_msg_steady"] = round((st[1][1] - st[0][1]) / (st[1][0] - st[0][0]), 2)
                p["steady_window_readings"] = st[1][0] - st[0][0]
            if ph["stats0"] is not None:
                a0, a1 = ph["stats0"], ph["stats1"]
                # an older agent may not report every key (no storeCommits before the log
                # store): those deltas are None ("n/a"), and listed in agent_stats_missing
                d = {k: (a1[k] - a0.get(k, 0) if k in a1 else None) for k in
                     ("messagesReceived", "alertsAccepted", "alertsSent", "storeCommits",
                      "inputsWaited", "queueDropped", "reconnects", "alertsResent")}
                p["agent_stats_delta"] = d
                missing = [k for k, v in d.items() if v is None]
                if missing:
                    p["agent_stats_missing"] = missing
                if d["storeCommits"] and d["messagesReceived"] is not None:
                    p["messages_per_fsync"] = round(d["messagesReceived"] / d["storeCommits"], 2)
                    if d["alertsAccepted"] is not None:
                        p["alerts_per_fsync"] = round(d["alertsAccepted"] / d["storeCommits"], 2)
                if d["messagesReceived"] != n:
                    problems.append(f"{t.name}/{kind}: messagesReceived delta "
                                    f"{d['messagesReceived']} != {n}")
            out["phases"][kind] = p
        return out, problems


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def table(results, ratios, compare=None):
    rows = [("", [r["target"] for r in results])]
    def row(label, f):
        rows.append((label, [f(r) for r in results]))
    for kind, title in (("u", "unpaced"), ("p", "paced")):
        def g(r, k, kind=kind):
            return r["phases"].get(kind, {}).get(k)
        row(f"[{title}] readings", lambda r, g=g: fmt(g(r, "readings")))
        row(f"[{title}] sensor readings/s", lambda r, g=g: fmt(g(r, "sensor_per_s")))
        row(f"[{title}] sensor throttled s", lambda r, g=g: fmt(g(r, "sensor_throttled_s"), 2))
        row(f"[{title}] messages/s (target)", lambda r, g=g: fmt(g(r, "messages_per_s")))
        row(f"[{title}] alerts/s upstream", lambda r, g=g: fmt(g(r, "alerts_per_s")))
        row(f"[{title}] alerts lost", lambda r, g=g: fmt(g(r, "alerts_lost") if g(r, "alerts_lost")
                                                         is not None else g(r, "lost")))
        row(f"[{title}] latency p50 ms", lambda r, g=g: fmt((g(r, "latency_ms") or {}).get("p50"), 2))
        row(f"[{title}] latency p99 ms", lambda r, g=g: fmt((g(r, "latency_ms") or {}).get("p99"), 2))
        row(f"[{title}] CPU us/msg", lambda r, g=g: fmt(g(r, "cpu_us_per_msg")))
        row(f"[{title}] broker CPU us/msg", lambda r, g=g: fmt(g(r, "broker_cpu_us_per_msg")))
        row(f"[{title}] sensor (bench) CPU us/msg", lambda r, g=g: fmt(g(r, "sensor_cpu_us_per_msg")))
        row(f"[{title}] mallocs/msg", lambda r, g=g: fmt(g(r, "mallocs_per_msg_phase"), 2))
        if kind == "p":
            row("[paced] mallocs/msg steady", lambda r, g=g: fmt(g(r, "mallocs_per_msg_steady"), 2))
        row(f"[{title}] messages/fsync", lambda r, g=g: "n/a" if "storeCommits" in
            (g(r, "agent_stats_missing") or []) else fmt(g(r, "messages_per_fsync"), 2))
    row("peak RSS (VmHWM) kB", lambda r: fmt(r["peak_rss_kb"]))
    w0 = max(len(x[0]) for x in rows)
    w = [max(len(x[1][i]) for x in rows) for i in range(len(results))]
    lines = []
    for label, vals in rows:
        lines.append(label.ljust(w0) + "  " + "  ".join(v.rjust(w[i]) for i, v in enumerate(vals)))
    if ratios:
        lines.append("")
        lines.append("agent / node (below 1: the agent uses less):")
        for k, v in ratios.items():
            lines.append(f"  {k}: {fmt(v, 3)}")
    if compare:
        lines.append("")
        lines.append(compare_table(compare))
    return "\n".join(lines)


# -- agent (after) vs agent-before vs node ------------------------------------------------------
COMPARE_METRICS = [
    # (key, label, phase or None, field, ratio wanted)
    ("cpu_us_per_msg_unpaced", "CPU us/msg, unpaced", "u", "cpu_us_per_msg", True),
    ("cpu_us_per_msg_paced", "CPU us/msg, paced", "p", "cpu_us_per_msg", True),
    ("peak_rss_kb", "peak RSS kB", None, "peak_rss_kb", True),
    ("messages_per_s_unpaced", "messages/s, unpaced", "u", "messages_per_s", True),
    ("messages_per_s_paced", "messages/s, paced", "p", "messages_per_s", True),
    ("alerts_delivered_unpaced", "alerts delivered, unpaced", "u", "alerts_upstream", True),
    ("alerts_delivered_paced", "alerts delivered, paced", "p", "alerts_upstream", True),
    ("alerts_lost_unpaced", "alerts lost, unpaced", "u", "alerts_lost", True),
    ("alerts_lost_paced", "alerts lost, paced", "p", "alerts_lost", True),
    ("latency_p50_ms_paced", "latency p50 ms, paced", "p", "latency_p50", False),
    ("latency_p99_ms_paced", "latency p99 ms, paced", "p", "latency_p99", False),
    ("mallocs_per_msg_steady", "mallocs/msg steady, paced", "p", "mallocs_per_msg_steady", False),
    ("messages_per_fsync_unpaced", "messages/fsync, unpaced", "u", "messages_per_fsync", False),
]


def _metric(r, phase, field):
    if r is None:
        return None
    if phase is None:
        return r.get(field)
    p = r["phases"].get(phase, {})
    if field.startswith("latency_"):
        return (p.get("latency_ms") or {}).get(field.split("_", 1)[1])
    return p.get(field)


def _ratio(x, y):
    if x is None or y is None or y == 0:
        return None  # n/a (a missing value, or 0 in the denominator: e.g. 0 lost / 0 lost)
    return round(x / y, 3)


def compare_agents(by):
    """after (agent) vs before (agent-before) vs node, with after/before and after/node."""
    after, before, node = by.get("agent"), by.get("agent-before"), by.get("node")
    out = {}
    for key, label, phase, field, want_ratio in COMPARE_METRICS:
        a, b, n = (_metric(x, phase, field) for x in (after, before, node))
        row = {"label": label, "after": a, "before": b, "node": n}
        if want_ratio:
            row["after_over_before"] = _ratio(a, b)
            row["after_over_node"] = _ratio(a, n)
        out[key] = row
    return out


def compare_table(cmp):
    head = ["", "after (agent)", "before", "node", "after/before", "after/node"]
    rows = [head]
    for row in cmp.values():
        def v(x, nd=2 if "latency" in row["label"] else 1):
            return "n/a" if x is None else fmt(x, nd)
        rows.append([row["label"], v(row["after"]), v(row["before"]), v(row["node"]),
                     v(row.get("after_over_before"), 3) if "after_over_before" in row else "",
                     v(row.get("after_over_node"), 3) if "after_over_node" in row else ""])
    w = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["agent (after) vs agent-before vs node (ratios below 1: after uses less / is lower; "
             "n/a: missing, or 0 in the denominator):"]
    for r in rows:
        lines.append(r[0].ljust(w[0]) + "  " + "  ".join(r[i].rjust(w[i])
                                                         for i in range(1, len(head))))
    return "\n".join(lines)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--null-subscriber":
        null_subscriber(sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output dir (replaced if made by this script)")
    ap.add_argument("--agent", default=os.path.join(REPO, "build", "native", "src", "gateway-agent"))
    ap.add_argument("--agent-before", default=None, metavar="PATH",
                    help="an older agent build, run as its own target agent-before (same workload);"
                    " the summary then compares agent (after) / agent-before / node")
    ap.add_argument("--plugin", default=None, help="hub_emulator_plugin.so (default: "
                    "$GA_HUB_EMULATOR_PLUGIN, else the native build's)")
    ap.add_argument("--node-modules", default=None, help="node_modules with azure-iot-device(-mqtt)"
                    " (default: the sdk.node ctest install if it matches, else npm ci into OUT)")
    ap.add_argument("--count", type=int, default=20000, help="readings in the unpaced phase")
    ap.add_argument("--hot", type=float, default=0.5, help="share of readings above the threshold")
    ap.add_argument("--rate", type=float, default=1000.0, help="paced phase readings/s")
    ap.add_argument("--paced-seconds", type=float, default=10.0)
    ap.add_argument("--window", type=int, default=100, help="sensor QoS 1 window")
    ap.add_argument("--max-in-flight", type=int, default=4000,
                    help="unpaced: hold the sensor when this many readings are not through yet")
    ap.add_argument("--targets", default=None, help="comma list (default emulator,agent,node;"
                    " with --agent-before: emulator,agent-before,agent,node)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-malloc-count", action="store_true")
    a = ap.parse_args()

    b = Bench(a)
    targets = {"emulator": EmulatorTarget, "agent": AgentTarget, "agent-before": AgentTarget,
               "node": NodeTarget}
    live = []
    results, problems = [], []

    def on_term(*_):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    try:
        b.prepare()
        b.start_hub()
        for name in b.targets():
            if name not in targets:
                raise BenchError(f"unknown target {name}")
            if name == "agent-before":
                t = AgentTarget(b, "agent-before", b.agent_before)
            else:
                t = targets[name](b)
            live.append(t)
            res = b.run_target(t)
            summ, probs = b.summarize(t, res)
            results.append(summ)
            problems += probs
    except BenchError as e:
        log(f"bench error: {e}")
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for t in live:
            try:
                t.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                log(f"stopping {t.name}: {e}")
        b.stop_hub()

    ratios = {}
    by = {r["target"]: r for r in results}
    if "agent" in by and "node" in by:
        for kind in ("u", "p"):
            ca = by["agent"]["phases"][kind].get("cpu_us_per_msg")
            cn = by["node"]["phases"][kind].get("cpu_us_per_msg")
            if ca is not None and cn:
                ratios[f"cpu_per_msg_{'unpaced' if kind == 'u' else 'paced'}"] = round(ca / cn, 3)
        if by["agent"]["peak_rss_kb"] and by["node"]["peak_rss_kb"]:
            ratios["peak_rss"] = round(by["agent"]["peak_rss_kb"] / by["node"]["peak_rss_kb"], 3)
    summary = {"config": {"count": a.count, "hot": a.hot, "rate": a.rate,
                          "paced_seconds": a.paced_seconds, "window": a.window,
                          "max_in_flight": a.max_in_flight, "seed": a.seed,
                          "agent": os.path.abspath(a.agent),
                          "agent_before": os.path.abspath(a.agent_before) if a.agent_before
                          else None, "targets": b.targets(), "cpus": os.cpu_count(),
                          "node": subprocess.run(["node", "--version"], capture_output=True,
                                                 text=True).stdout.strip()},
               "targets": results, "ratios_agent_over_node": ratios, "problems": problems,
               "upstream_other_records": b.up.other if b.up else None,
               "upstream_without_alert_property": b.up.props_bad if b.up else None}
    compare = compare_agents(by) if "agent-before" in by else None
    if compare is not None:
        summary["compare_after_before_node"] = compare
    with open(os.path.join(b.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    text = table(results, ratios, compare)
    with open(os.path.join(b.out, "summary.txt"), "w") as f:
        f.write(text + "\n")
    print(text)
    for p in problems:
        log("PROBLEM: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
