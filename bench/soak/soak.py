#!/usr/bin/python3
"""Soak bench: the real gateway-agent against the hub emulator for N minutes, with faults.

    soak.py --minutes N --out DIR [--agent PATH] [--rate MSG_PER_S] [--fault-every SECONDS]
            [--seed S] [--plugin PATH] [--warmup S] [--drain-timeout S] [--overwrite]

Sends UDP readings {"machine":{"temperature":T},"seq":N} at a steady rate to the agent, injects
faults in a fixed rotation (hub outage, connection drop, refused reconnects, SIGKILL, rebootDevice,
twin patch, SIGTERM), samples the agent's memory, FDs and threads and the alerts recorded upstream
every 5 s, and at the end checks that every alert above the threshold arrived (at least once).

Writes into DIR only: soak.csv, faults.csv, summary.json, soak.png (if gnuplot is installed),
agent.log (agent stderr, each line prefixed with the elapsed soak time), agent.conf, state/,
hub/ (the emulator instance), a copy of the agent binary and of the emulator plugin.
Exit status: 0 all good, 1 alerts lost / unexpected alerts / agent died or misbehaved,
2 the bench itself could not run (emulator did not start, bad arguments, ...).
See bench/soak/README.md.
"""

import argparse
import array
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EMU = REPO / "tools" / "hub-emulator"
MODULE = "edgedev/filter"
THRESHOLD = 25.0
SAMPLE_EVERY_S = 5.0
MARKER = ".soak-dir"
FAULTS = ["hub-outage", "drop", "refuse-drop", "sigkill", "reboot", "twin-patch", "sigterm"]
HUB_OUTAGE_S = 20.0
REFUSE_S = 15
BOUNDARY_TEMPS = ["25", "25.0", "25.01", "24.99", "25.000001", "24.999999"]
CSV_COLUMNS = ["elapsed_s", "pid", "lifetime", "rss_kb", "hwm_kb", "fds", "threads", "sent",
               "expected", "received", "duplicates", "unexpected", "missing", "udp_drops",
               "hub_up", "phase"]


class BenchError(Exception):
    """The bench itself cannot go on (not an agent problem)."""


class Abort(Exception):
    """The agent failed in a way that ends the soak early."""


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_status(pid):
    """VmRSS, VmHWM (kB), Threads and open FD count of pid, or None if it is gone."""
    try:
        vals = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    vals[k] = int(v.split()[0])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return vals.get("VmRSS"), vals.get("VmHWM"), fds, vals.get("Threads")
    except (OSError, ValueError, IndexError):
        return None


def udp_socket_info(port):
    """{inode: (rx_queue_bytes, drops)} for IPv4 UDP sockets bound to 127.0.0.1:port."""
    want = "0100007F:%04X" % port
    out = {}
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                p = line.split()
                if len(p) >= 13 and p[1] == want:
                    rx = int(p[4].split(":")[1], 16)
                    out[p[9]] = (rx, int(p[12]))
    except (OSError, ValueError, StopIteration):
        pass
    return out


def linreg_slope(groups):
    """Pooled within-group least-squares slope of y over x; groups: lists of (x, y)."""
    sxy = sxx = 0.0
    for pts in groups:
        if len(pts) < 2:
            continue
        mx = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        sxy += sum((p[0] - mx) * (p[1] - my) for p in pts)
        sxx += sum((p[0] - mx) ** 2 for p in pts)
    return sxy / sxx if sxx > 0 else None


class Soak:
    def __init__(self, args):
        self.args = args
        self.dir = Path(args.out).resolve()
        self.hub_dir = self.dir / "hub"
        self.state_dir = self.dir / "state"
        self.conf = self.dir / "agent.conf"
        self.agent_bin = self.dir / "gateway-agent"
        self.plugin = self.dir / "hub_emulator_plugin.so"
        self.t0 = time.monotonic()
        self.stop_evt = threading.Event()      # everything winds down
        self.send_stop = threading.Event()     # sender stops for good
        self.paused = threading.Event()        # sender paused (agent restart)
        self.send_lock = threading.Lock()      # held while one reading is booked and sent
        self.data_lock = threading.Lock()      # counters shared with the sampler
        self.agent_lock = threading.RLock()
        self.log_lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp_port = None
        # readings
        self.next_seq = 0
        self.sent = 0
        self.send_errors = 0
        self.send_time = array.array("d")      # by seq: elapsed s when booked
        self.expected = set()
        self.pending = set()                   # expected and not received yet
        self.expected_count = 0
        # upstream
        self.hub_next = 0                      # emulator record seq already seen
        self.received = set()
        self.duplicates = 0
        self.unexpected = []                   # received seqs that were below the threshold
        self.order_violations = 0
        self.last_first_seq = -1
        self.hub_up = False
        self.upstream_polls_failed = 0
        # agent
        self.proc = None
        self.logf = None
        self.reader = None
        self.started_count = 0
        self.restarting = False
        self.lifetimes = []                    # {pid, start_s, end_s, end}
        self.udp_drops_by_inode = {}
        self.problems = []                     # agent problems (make the exit status 1)
        self.faults = []                       # {t, fault, duration_s, ok, detail}
        self.samples = []
        self.threads = []

    # ---- helpers -------------------------------------------------------------------------------

    def now(self):
        return time.monotonic() - self.t0

    def say(self, msg):
        print(f"[{self.now():7.1f}s] {msg}", flush=True)

    def problem(self, msg):
        self.problems.append(f"t={self.now():.1f}s: {msg}")
        self.say("AGENT PROBLEM: " + msg)
        self.agent_log_marker("AGENT PROBLEM: " + msg)

    def emu(self, tool, *args, timeout=60, check=True):
        cmd = [sys.executable, str(EMU / tool)] + [str(a) for a in args]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            if check:
                raise BenchError(f"{tool} {' '.join(map(str, args[:4]))} timed out")
            return None
        if check and r.returncode != 0:
            raise BenchError(f"{tool} {' '.join(map(str, args[:4]))} failed ({r.returncode}): "
                             f"{r.stderr.strip()[-1500:]}")
        return r

    def hubctl(self, *args, timeout=30, check=True):
        return self.emu("hubctl", "--dir", self.hub_dir, *args, timeout=timeout, check=check)

    def wait(self, seconds):
        """Sleeps up to seconds; True if the soak is being stopped."""
        return self.stop_evt.wait(max(0.0, seconds))

    # ---- set-up --------------------------------------------------------------------------------

    def prepare(self):
        d = self.dir
        if d.exists() and any(d.iterdir()):
            if not (d / MARKER).exists():
                raise BenchError(f"{d} exists, is not empty and is not a soak directory")
            if not self.args.overwrite:
                raise BenchError(f"{d} holds an earlier soak; pass --overwrite to replace it")
            if (d / "hub").exists():
                self.emu("hubemu", "stop", "--dir", d / "hub", check=False, timeout=30)
            shutil.rmtree(d)
        d.mkdir(parents=True, exist_ok=True)
        (d / MARKER).write_text("created by bench/soak/soak.py\n")
        src = Path(self.args.agent).resolve()
        if not os.access(src, os.X_OK):
            raise BenchError(f"agent binary {src} not found or not executable")
        shutil.copy2(src, self.agent_bin)
        plugin = Path(self.args.plugin).resolve()
        if not plugin.is_file():
            raise BenchError(f"emulator plugin {plugin} not found")
        shutil.copy2(plugin, self.plugin)
        self.state_dir.mkdir()
        self.faults_f = open(d / "faults.csv", "w")
        self.faults_f.write("elapsed_s,fault,duration_s,ok,detail\n")
        self.faults_f.flush()
        self.csv_f = open(d / "soak.csv", "w")
        self.csv_f.write(",".join(CSV_COLUMNS) + "\n")
        self.csv_f.flush()

    def start_hub(self):
        self.hub_dir.mkdir(exist_ok=True)
        self.emu("hubemu", "start", "--dir", self.hub_dir, "--plugin", self.plugin)
        self.hub_up = True
        self.hub_port = int((self.hub_dir / "port").read_text().strip())

    def write_conf(self):
        connstr = self.emu("hubemu", "connstr", "--dir", self.hub_dir, MODULE,
                           "--gateway", "localhost").stdout.strip()
        self.udp_port = free_udp_port()
        self.conf.write_text(
            "# written by bench/soak/soak.py\n"
            "[hub]\n"
            f"connection_string = {connstr}\n"
            f"port = {self.hub_port}\n"
            f"ca_file = {self.hub_dir / 'ca.pem'}\n"
            "[source]\n"
            "type = udp\n"
            f"bind = 127.0.0.1:{self.udp_port}\n"
            "[reboot]\n"
            "mode = simulate\n"
            "simulate_delay = 1\n"
            "[state]\n"
            f"dir = {self.state_dir}\n"
            "[log]\n"
            "stats_interval = 10\n")
        os.chmod(self.conf, 0o600)

    # ---- agent process -------------------------------------------------------------------------

    def agent_log_marker(self, text):
        with self.log_lock:
            if self.logf and not self.logf.closed:
                self.logf.write(f"[{self.now():8.1f}s] === soak: {text} ===\n")
                self.logf.flush()

    def _read_agent(self, proc):
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self.log_lock:
                if not self.logf.closed:
                    self.logf.write(f"[{self.now():8.1f}s] {line}\n")
                    self.logf.flush()
            if " started: " in line:
                with self.data_lock:
                    self.started_count += 1

    def start_agent(self, why):
        with self.agent_lock:
            if self.logf is None:
                self.logf = open(self.dir / "agent.log", "a")
            before = self.started_count
            self.agent_log_marker(f"starting agent ({why})")
            self.proc = subprocess.Popen([str(self.agent_bin), "--config", str(self.conf)]
                                         + (["--allow-root"] if os.geteuid() == 0 else []),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            self.reader = threading.Thread(target=self._read_agent, args=(self.proc,),
                                           daemon=True)
            self.reader.start()
            self.lifetimes.append({"pid": self.proc.pid, "start_s": round(self.now(), 1),
                                   "end_s": None, "end": None})
        # The UDP socket is bound before the "started" line is logged.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.data_lock:
                if self.started_count > before:
                    return
            if self.proc.poll() is not None:
                raise Abort(f"agent exited with {self.proc.returncode} during start-up ({why})")
            time.sleep(0.05)
        raise Abort(f"agent did not log 'started' within 30 s ({why})")

    def end_lifetime(self, how):
        lt = self.lifetimes[-1]
        lt["end_s"] = round(self.now(), 1)
        lt["end"] = how

    def drain_udp(self):
        """After pausing the sender: let the agent read every datagram already sent."""
        time.sleep(0.3)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            info = udp_socket_info(self.udp_port)
            if all(rx == 0 for rx, _ in info.values()):
                return True
            time.sleep(0.05)
        return False

    def stop_agent(self, sig, timeout=20):
        """Signals the agent and waits; returns its exit status (or None if it had to be killed)."""
        with self.agent_lock:
            p = self.proc
            if p is None or p.poll() is not None:
                return p.returncode if p else None
            p.send_signal(sig)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
                return None
            finally:
                if self.reader:
                    self.reader.join(timeout=5)
            return p.returncode

    # ---- readings ------------------------------------------------------------------------------

    def reading(self):
        if self.rng.random() < 0.05:
            t = self.rng.choice(BOUNDARY_TEMPS)
        else:
            t = "%.2f" % self.rng.uniform(THRESHOLD - 10, THRESHOLD + 10)
        return t, float(t) > THRESHOLD

    def send_one(self):
        temp, above = self.reading()
        with self.data_lock:
            seq = self.next_seq
            self.next_seq += 1
            self.send_time.append(self.now())
            if above:  # booked before sending, so the sampler never sees an alert it does not know
                self.expected.add(seq)
                self.pending.add(seq)
        body = ('{"machine":{"temperature":%s},"seq":%d}' % (temp, seq)).encode()
        try:
            self.sock.sendto(body, ("127.0.0.1", self.udp_port))
        except OSError as e:
            with self.data_lock:
                self.expected.discard(seq)
                self.pending.discard(seq)
                self.send_errors += 1
            self.say(f"send of seq {seq} failed: {e}")
            return
        with self.data_lock:
            self.sent += 1
            if above:
                self.expected_count += 1

    def sender(self):
        interval = 1.0 / self.args.rate
        next_t = time.monotonic()
        while not self.send_stop.is_set():
            if self.paused.is_set():
                self.send_stop.wait(0.05)
                next_t = time.monotonic()
                continue
            now = time.monotonic()
            if now < next_t:
                time.sleep(min(next_t - now, 0.1))
                continue
            with self.send_lock:
                if self.paused.is_set() or self.send_stop.is_set():
                    continue
                self.send_one()
            next_t += interval
            if next_t < now - 1.0:  # a stall: go on at the rate, do not burst
                next_t = now

    def pause_sending(self):
        self.paused.set()
        with self.send_lock:
            pass

    def resume_sending(self):
        self.paused.clear()

    # ---- upstream ------------------------------------------------------------------------------

    def poll_upstream(self):
        r = self.hubctl("messages", "--since", self.hub_next, "--timeout", 10, timeout=30,
                        check=False)
        if r is None or r.returncode != 0:
            self.upstream_polls_failed += 1
            return False
        for line in r.stdout.splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            self.hub_next = max(self.hub_next, int(rec.get("seq", 0)))
            if rec.get("properties", {}).get("MessageType") != "Alert":
                continue
            try:
                seq = int(json.loads(rec.get("body", ""))["seq"])
            except (ValueError, KeyError, TypeError):
                self.problem(f"alert with an unreadable body upstream: {line[:200]}")
                continue
            with self.data_lock:
                if seq in self.received:
                    self.duplicates += 1
                    continue
                self.received.add(seq)
                self.pending.discard(seq)
                if seq not in self.expected:
                    self.unexpected.append(seq)
                if seq < self.last_first_seq:
                    self.order_violations += 1
                self.last_first_seq = max(self.last_first_seq, seq)
        return True

    # ---- faults --------------------------------------------------------------------------------

    def record_fault(self, t, name, dur, ok, detail):
        detail = detail.replace(",", ";").replace("\n", " ")
        self.faults.append({"t": round(t, 1), "fault": name, "duration_s": round(dur, 1),
                            "ok": ok, "detail": detail})
        self.faults_f.write(f"{t:.1f},{name},{dur:.1f},{int(ok)},{detail}\n")
        self.faults_f.flush()
        self.say(f"fault {name}: {'ok' if ok else 'FAILED'} ({dur:.1f} s) {detail}")

    def restart_agent_after(self, sig, name):
        self.pause_sending()
        self.restarting = True
        try:
            drained = self.drain_udp()
            self.agent_log_marker(f"fault {name}: sending {signal.Signals(sig).name}")
            rc = self.stop_agent(sig)
            self.end_lifetime(name)
            detail = f"exit {rc}"
            ok = True
            if sig == signal.SIGTERM and rc != 0:
                ok = False
                self.problem(f"agent exit status {rc} after SIGTERM (expected 0)")
            if sig == signal.SIGKILL and rc != -signal.SIGKILL:
                ok = False
                self.problem(f"agent exit status {rc} after SIGKILL")
            if not drained:
                detail += "; udp queue not drained before the signal"
            self.start_agent(f"after {name}")
            return ok, detail + f"; new pid {self.proc.pid}"
        finally:
            self.restarting = False
            self.resume_sending()

    def wait_connected(self, timeout=90):
        """Waits (bounded) until the emulator shows the agent connected; seconds waited or None."""
        t1 = time.monotonic()
        while time.monotonic() - t1 < timeout and not self.stop_evt.is_set():
            r = self.hubctl("connections", check=False)
            if r is not None and r.returncode == 0:
                try:
                    ids = json.loads(r.stdout).get("identities", [])
                except ValueError:
                    ids = []
                if any(i.get("id") == MODULE and i.get("connected") for i in ids):
                    return time.monotonic() - t1
            self.wait(1)
        return None

    def fault(self, name):
        if name in ("drop", "refuse-drop", "reboot", "twin-patch"):
            # These act on a live connection: let the agent finish reconnecting first.
            waited = self.wait_connected()
            if waited is None:
                if self.stop_evt.is_set():
                    return False, "soak stopping"
                self.problem(f"agent not connected 90 s before fault {name}")
                return False, "agent not connected within 90 s"
            self.action_t = self.now()
            ok, detail = self.fault_on_connected(name)
            return ok, f"{detail}; waited {waited:.1f} s for the connection"
        if name == "hub-outage":
            self.agent_log_marker("fault hub-outage: emulator stopping")
            self.hub_up = False
            self.emu("hubemu", "stop", "--dir", self.hub_dir)
            t_down = time.monotonic()
            # Restart even when the soak is stopping: the final drain needs the hub.
            self.wait(HUB_OUTAGE_S)
            for attempt in range(3):
                r = self.emu("hubemu", "restart", "--dir", self.hub_dir, check=False)
                if r is not None and r.returncode == 0:
                    self.hub_up = True
                    self.agent_log_marker("fault hub-outage: emulator back")
                    return True, f"down {time.monotonic() - t_down:.1f} s"
                time.sleep(2)
            raise BenchError("emulator did not restart after the outage: "
                             + (r.stderr[-1500:] if r else "timeout"))
        if name == "sigkill":
            return self.restart_agent_after(signal.SIGKILL, name)
        if name == "sigterm":
            return self.restart_agent_after(signal.SIGTERM, name)
        raise ValueError(name)

    def fault_on_connected(self, name):
        if name == "drop":
            self.agent_log_marker("fault drop")
            r = json.loads(self.hubctl("drop", MODULE).stdout)
            return True, f"dropped={r.get('dropped')}"
        if name == "refuse-drop":
            self.agent_log_marker(f"fault refuse-drop: refuse {REFUSE_S} s code 3, drop")
            self.hubctl("refuse", REFUSE_S, "--code", 3)
            r = json.loads(self.hubctl("drop", MODULE).stdout)
            return True, f"refuse {REFUSE_S} s code 3; dropped={r.get('dropped')}"
        if name == "reboot":
            self.agent_log_marker("fault reboot: rebootDevice")
            for attempt in range(1, 4):
                r = self.hubctl("method", MODULE, "rebootDevice", "--timeout", 30, timeout=90,
                                check=False)
                if r is None or r.returncode != 0:
                    return False, "hubctl method failed: " + (r.stderr.strip()[-300:] if r else "")
                ans = json.loads(r.stdout)
                st = ans.get("status")
                # 404 right after a connect: not subscribed to methods yet; ask again.
                if st != 404 or attempt == 3 or self.wait(2):
                    break
            if st != 200:
                self.problem(f"rebootDevice answered {st} (attempt {attempt}): "
                             f"{r.stdout.strip()[:300]}")
            return st == 200, f"status {st} (attempt {attempt})"
        if name == "twin-patch":
            # The threshold stays 25 (only $version moves), so the expected set stays exact.
            self.agent_log_marker("fault twin-patch: TemperatureThreshold 25")
            r = json.loads(self.hubctl("twin", "set-desired", MODULE,
                                       json.dumps({"TemperatureThreshold": 25})).stdout)
            version = r.get("version")
            t1 = time.monotonic()
            while time.monotonic() - t1 < 60 and not self.stop_evt.is_set():
                tw = self.hubctl("twin", "show", MODULE, check=False)
                if tw is not None and tw.returncode == 0:
                    ack = json.loads(tw.stdout).get("reported", {}).get("TemperatureThreshold")
                    if isinstance(ack, dict) and ack.get("av") == version:
                        return (ack.get("ac") == 200 and ack.get("value") == 25,
                                f"$version {version} acked in {time.monotonic() - t1:.1f} s: "
                                f"{json.dumps(ack)}")
                self.wait(1)
            if not self.stop_evt.is_set():
                self.problem(f"twin patch $version {version} not acknowledged within 60 s")
            return False, f"$version {version} not acked"
        raise ValueError(name)

    def fault_loop(self):
        try:
            k = 0
            end = self.args.minutes * 60
            while not self.stop_evt.is_set():
                # On the grid (k+1)*fault_every, but never less than 5 s after the last fault.
                t_next = max((k + 1) * self.args.fault_every, self.now() + (5 if k else 0))
                if t_next >= end:
                    return
                if self.wait(t_next - self.now()):
                    return
                name = FAULTS[k % len(FAULTS)]
                k += 1
                t = self.action_t = self.now()
                self.say(f"fault {name} starts")
                try:
                    ok, detail = self.fault(name)
                except Abort as e:
                    self.fatal = e
                    self.record_fault(t, name, self.now() - t, False, str(e))
                    self.stop_evt.set()
                    return
                # Logged at the moment it acted (after any wait for the connection).
                t = self.action_t
                self.record_fault(t, name, self.now() - t, ok, detail)
        except BaseException as e:  # noqa: BLE001 - hand it to the main thread
            self.fatal = e
            self.stop_evt.set()

    # ---- sampling ------------------------------------------------------------------------------

    def check_agent_alive(self):
        with self.agent_lock:
            if self.restarting or self.proc is None:
                return
            rc = self.proc.poll()
            if rc is not None:
                self.end_lifetime(f"died ({rc})")
                self.record_fault(self.now(), "agent-died", 0, False, f"exit status {rc}")
                raise Abort(f"agent exited unexpectedly with status {rc}")

    def sample(self, phase):
        with self.data_lock:
            snap = self.next_seq  # readings booked before the poll: the ones that can be missing
        hub_ok = self.hub_up and self.poll_upstream()
        with self.agent_lock:
            pid = self.proc.pid if self.proc and self.proc.poll() is None else None
            lifetime = len(self.lifetimes) - 1
        st = proc_status(pid) if pid else None
        for inode, (_, drops) in udp_socket_info(self.udp_port).items():
            self.udp_drops_by_inode[inode] = drops
        with self.data_lock:
            row = {"elapsed_s": round(self.now(), 1), "pid": pid or "", "lifetime": lifetime,
                   "rss_kb": st[0] if st else "", "hwm_kb": st[1] if st else "",
                   "fds": st[2] if st else "", "threads": st[3] if st else "",
                   "sent": self.sent, "expected": self.expected_count,
                   "received": len(self.received), "duplicates": self.duplicates,
                   "unexpected": len(self.unexpected),
                   "missing": sum(1 for q in self.pending if q < snap),
                   "udp_drops": sum(self.udp_drops_by_inode.values()),
                   "hub_up": int(hub_ok), "phase": phase}
        self.samples.append(row)
        self.csv_f.write(",".join(str(row[c]) for c in CSV_COLUMNS) + "\n")
        self.csv_f.flush()
        return row

    # ---- the run -------------------------------------------------------------------------------

    def run(self):
        self.fatal = None
        self.prepare()
        self.start_hub()
        self.write_conf()
        self.say(f"emulator on 127.0.0.1:{self.hub_port}, agent udp 127.0.0.1:{self.udp_port}, "
                 f"{self.args.minutes:g} min, {self.args.rate:g} msg/s, "
                 + (f"fault every {self.args.fault_every:g} s"
                    if self.args.fault_every != float("inf") else "no faults")
                 + f", seed {self.args.seed}, out {self.dir}")
        self.start_agent("initial")
        self.t_start_send = self.now()
        for target in (self.sender, self.fault_loop):
            th = threading.Thread(target=target, daemon=True)
            th.start()
            self.threads.append(th)
        end = self.args.minutes * 60
        next_sample = self.now()
        next_report = 60.0
        try:
            while self.now() < end and not self.stop_evt.is_set():
                if self.wait(min(next_sample, end) - self.now()):
                    break
                if self.now() >= end:
                    break
                next_sample += SAMPLE_EVERY_S
                self.check_agent_alive()
                row = self.sample("run")
                if self.now() >= next_report:
                    next_report += 60
                    self.say(f"sent {row['sent']} expected {row['expected']} received "
                             f"{row['received']} missing {row['missing']} dup "
                             f"{row['duplicates']} rss {row['rss_kb']} kB fds {row['fds']}")
            if self.fatal:
                raise self.fatal
            # Stop sending; wait for the faults still running, then for every expected alert.
            self.send_stop.set()
            self.pause_sending()
            self.stop_evt.set()
            for th in self.threads:
                th.join(timeout=120)
            if self.fatal:
                raise self.fatal
            self.say(f"sending stopped at seq {self.next_seq}; waiting up to "
                     f"{self.args.drain_timeout:g} s for the missing alerts")
            self.agent_log_marker("sending stopped; draining")
            deadline = time.monotonic() + self.args.drain_timeout
            last = 0.0
            while True:
                self.check_agent_alive()
                if time.monotonic() - last >= 2:
                    row = self.sample("drain")
                    last = time.monotonic()
                    with self.data_lock:
                        done = not self.pending
                    if done and row["hub_up"]:
                        break
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
            self.drained_after_s = round(self.now() - end, 1)
        except Abort as e:
            self.problem(str(e))
            self.send_stop.set()
            self.stop_evt.set()
            self.pause_sending()
            self.aborted = True
        else:
            self.aborted = False

    def final_stop(self):
        """Clean SIGTERM at the end (counts as a check: exit status 0 expected)."""
        with self.agent_lock:
            if self.proc and self.proc.poll() is None:
                self.restarting = True
                t = time.monotonic()
                self.agent_log_marker("final SIGTERM")
                rc = self.stop_agent(signal.SIGTERM)
                self.end_lifetime("end")
                self.final_stop_s = round(time.monotonic() - t, 2)
                if rc != 0:
                    self.problem(f"final SIGTERM: exit status {rc} (expected 0)")
                return rc
        return None

    # ---- results -------------------------------------------------------------------------------

    def lifetime_stats(self):
        out = []
        groups = []
        warm = self.args.warmup
        for i, lt in enumerate(self.lifetimes):
            rows = [r for r in self.samples if r["lifetime"] == i and r["rss_kb"] != ""]
            post = [r for r in rows if r["elapsed_s"] - lt["start_s"] >= warm]
            s = dict(lt)
            s["samples"] = len(rows)
            s["samples_after_warmup"] = len(post)
            if rows:
                s["fd_min"] = min(r["fds"] for r in rows)
                s["fd_max"] = max(r["fds"] for r in rows)
                s["threads_min"] = min(r["threads"] for r in rows)
                s["threads_max"] = max(r["threads"] for r in rows)
                s["hwm_kb_max"] = max(r["hwm_kb"] for r in rows)
            if post:
                s["rss_kb_first"] = post[0]["rss_kb"]
                s["rss_kb_last"] = post[-1]["rss_kb"]
                s["rss_kb_max"] = max(r["rss_kb"] for r in post)
                s["rss_kb_min"] = min(r["rss_kb"] for r in post)
                pts = [(r["elapsed_s"] / 3600.0, r["rss_kb"]) for r in post]
                groups.append(pts)
                slope = linreg_slope([pts])
                s["rss_slope_kb_per_h"] = round(slope, 1) if slope is not None else None
            out.append(s)
        pooled = linreg_slope(groups)
        post_all = [r["rss_kb"] for i, lt in enumerate(self.lifetimes) for r in self.samples
                    if r["lifetime"] == i and r["rss_kb"] != ""
                    and r["elapsed_s"] - lt["start_s"] >= warm]
        overall = {"first": post_all[0] if post_all else None,
                   "last": post_all[-1] if post_all else None,
                   "max": max(post_all) if post_all else None,
                   "slope_kb_per_h_pooled": round(pooled, 1) if pooled is not None else None}
        return out, overall

    def lost_evidence(self, lost):
        ev = []
        for seq in lost[:200]:
            t = self.send_time[seq]
            prev = [f for f in self.faults if f["t"] <= t]
            f = prev[-1] if prev else None
            ev.append({"seq": seq, "sent_at_s": round(t, 2),
                       "preceding_fault": f["fault"] if f else None,
                       "fault_at_s": f["t"] if f else None,
                       "s_after_fault": round(t - f["t"], 2) if f else None})
        return ev

    def summarize(self):
        lifetimes, rss_post = self.lifetime_stats()
        with self.data_lock:
            lost = sorted(self.expected - self.received)
            unexpected = sorted(self.unexpected)
        rows = [r for r in self.samples if r["rss_kb"] != ""]
        twin = None
        if self.hub_up:
            r = self.hubctl("twin", "show", MODULE, check=False)
            if r is not None and r.returncode == 0:
                twin = json.loads(r.stdout).get("reported", {})
        summary = {
            "ok": None,
            "minutes": self.args.minutes, "rate_per_s": self.args.rate,
            "fault_every_s": self.args.fault_every, "seed": self.args.seed,
            "warmup_s": self.args.warmup, "agent": str(Path(self.args.agent).resolve()),
            "aborted": self.aborted,
            "sent": self.sent, "send_errors": self.send_errors,
            "expected": self.expected_count, "received_distinct": len(self.received),
            "lost": len(lost), "lost_seqs": lost[:200],
            "lost_evidence": self.lost_evidence(lost),
            "duplicates": self.duplicates,
            "unexpected_alerts": len(unexpected), "unexpected_seqs": unexpected[:200],
            "first_delivery_order_violations": self.order_violations,
            "udp_drops": sum(self.udp_drops_by_inode.values()),
            "upstream_polls_failed": self.upstream_polls_failed,
            "drain_s": getattr(self, "drained_after_s", None),
            "final_sigterm_s": getattr(self, "final_stop_s", None),
            "agent_processes": len(self.lifetimes),
            "rss_kb_max": max((r["rss_kb"] for r in rows), default=None),
            "hwm_kb_max": max((r["hwm_kb"] for r in rows), default=None),
            "fd_min": min((r["fds"] for r in rows), default=None),
            "fd_max": max((r["fds"] for r in rows), default=None),
            "threads_max": max((r["threads"] for r in rows), default=None),
            "rss_kb_after_warmup": rss_post,
            "lifetimes": lifetimes,
            "faults": {n: {"count": sum(1 for f in self.faults if f["fault"] == n),
                           "failed": sum(1 for f in self.faults
                                         if f["fault"] == n and not f["ok"])}
                       for n in FAULTS},
            "agent_stats_last_process": (twin or {}).get("agentStats"),
            "agent_problems": self.problems,
        }
        summary["ok"] = (not lost and not unexpected and not self.problems
                         and not self.aborted)
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def print_summary(self, s):
        p = print
        p("")
        p(f"== soak summary ({self.dir}) ==")
        p(f"result              : {'OK' if s['ok'] else 'FAILED'}"
          + (" (aborted early)" if s["aborted"] else ""))
        p(f"readings sent       : {s['sent']} (send errors {s['send_errors']}, "
          f"udp drops {s['udp_drops']})")
        p(f"alerts expected     : {s['expected']}")
        lost_label = "missing at abort (no drain)" if s["aborted"] else "lost"
        p(f"received (distinct) : {s['received_distinct']}   {lost_label}: {s['lost']}   "
          f"duplicates: "
          f"{s['duplicates']}   unexpected: {s['unexpected_alerts']}   order violations: "
          f"{s['first_delivery_order_violations']}")
        p(f"drain after sending : {s['drain_s']} s; final SIGTERM took {s['final_sigterm_s']} s")
        p(f"agent processes     : {s['agent_processes']}; RSS max {s['rss_kb_max']} kB, "
          f"VmHWM max {s['hwm_kb_max']} kB, FDs {s['fd_min']}..{s['fd_max']}, threads max "
          f"{s['threads_max']}")
        w = s["rss_kb_after_warmup"]
        p(f"RSS after {s['warmup_s']:g} s warm-up per process: first {w['first']} kB, last "
          f"{w['last']} kB, max {w['max']} kB, slope {w['slope_kb_per_h_pooled']} kB/h "
          f"(pooled within processes)")
        for i, lt in enumerate(s["lifetimes"]):
            p(f"  process {i} pid {lt['pid']} {lt['start_s']}..{lt['end_s']} s ({lt['end']}): "
              f"RSS first/last/max {lt.get('rss_kb_first')}/{lt.get('rss_kb_last')}/"
              f"{lt.get('rss_kb_max')} kB, slope {lt.get('rss_slope_kb_per_h')} kB/h, "
              f"FDs {lt.get('fd_min')}..{lt.get('fd_max')}, threads "
              f"{lt.get('threads_min')}..{lt.get('threads_max')}, samples "
              f"{lt['samples']} ({lt['samples_after_warmup']} after warm-up)")
        p("faults              : " + ", ".join(
            f"{n} {v['count']}" + (f" ({v['failed']} failed)" if v["failed"] else "")
            for n, v in s["faults"].items()))
        if s["lost"]:
            p(f"{lost_label.upper()} seqs (first 20): {s['lost_seqs'][:20]}")
            for e in s["lost_evidence"][:10]:
                p(f"  seq {e['seq']} sent at {e['sent_at_s']} s, {e['s_after_fault']} s after "
                  f"{e['preceding_fault']} at {e['fault_at_s']} s")
        if s["unexpected_alerts"]:
            p(f"UNEXPECTED alerts (below threshold, first 20): {s['unexpected_seqs'][:20]}")
        for pr in s["agent_problems"]:
            p(f"AGENT PROBLEM: {pr}")
        p(f"agentStats (twin, last process): {json.dumps(s['agent_stats_last_process'])}")

    def plot(self):
        gp = shutil.which("gnuplot")
        if not gp:
            self.say("gnuplot not installed: no soak.png (apt-get install gnuplot-nox)")
            return
        labels = 1 if len(self.faults) <= 40 else 0
        gpvars = f"dir='{self.dir}'; labels={labels}; nfaults={len(self.faults)}"
        r = subprocess.run([gp, "-e", gpvars,
                            str(HERE / "plot.gp")], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            self.say(f"gnuplot failed: {r.stderr.strip()[-800:]}")
        else:
            self.say(f"plot: {self.dir / 'soak.png'}")

    def cleanup(self):
        self.send_stop.set()
        self.stop_evt.set()
        self.paused.set()
        for th in self.threads:
            th.join(timeout=120)
        try:
            with self.agent_lock:
                self.restarting = True
                if self.proc and self.proc.poll() is None:
                    self.stop_agent(signal.SIGTERM)
                    if self.lifetimes and self.lifetimes[-1]["end_s"] is None:
                        self.end_lifetime("cleanup")
        finally:
            if self.hub_dir.exists():
                self.emu("hubemu", "stop", "--dir", self.hub_dir, check=False, timeout=30)
            with self.log_lock:
                if self.logf:
                    self.logf.close()
            self.sock.close()


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--out", required=True, help="output directory (created; nothing outside it "
                   "is written)")
    p.add_argument("--agent", default=str(REPO / "build/native/src/gateway-agent"))
    p.add_argument("--plugin", default=os.environ.get(
        "GA_HUB_EMULATOR_PLUGIN",
        str(REPO / "build/native/tools/hub-emulator/hub_emulator_plugin.so")),
        help="emulator plugin (default $GA_HUB_EMULATOR_PLUGIN, else the native build's)")
    p.add_argument("--rate", type=float, default=20.0, help="readings per second (default 20)")
    p.add_argument("--fault-every", type=float, default=120.0,
                   help="seconds between faults (default 120; 0 = no faults)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--warmup", type=float, default=60.0,
                   help="seconds after each agent start left out of the RSS figures (default 60)")
    p.add_argument("--drain-timeout", type=float, default=120.0,
                   help="seconds to wait for the last alerts after sending stops (default 120)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier soak in --out (only a directory this script made)")
    args = p.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.rate > 2000 or args.fault_every < 0:
        p.error("need --minutes > 0, 0 < --rate <= 2000, --fault-every >= 0")
    if args.fault_every == 0:
        args.fault_every = float("inf")
    elif args.fault_every < 30:
        p.error("--fault-every below 30 s leaves no time between faults (hub outage is 20 s)")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    soak = Soak(args)
    status = 2
    summary = None
    try:
        soak.run()
        soak.final_stop()
        summary = soak.summarize()
        status = 0 if summary["ok"] else 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the agent and the emulator", file=sys.stderr)
        status = 130
    except BenchError as e:
        print(f"soak: bench error: {e}", file=sys.stderr)
        status = 2
    finally:
        try:
            soak.cleanup()
        except KeyboardInterrupt:
            pass
    if summary is not None:
        soak.print_summary(summary)
        soak.plot()
    return status


if __name__ == "__main__":
    sys.exit(main())
