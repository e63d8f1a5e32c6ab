"""The systemd units and the reboot oneshot's script, checked without touching this machine's
systemd: `systemd-analyze verify` and `security --offline` on copies under a throwaway root, and the
script run with a fake systemctl that records the call."""
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
SCRIPT = UNITS / "gateway-agent-reboot-if-fresh"
AGENT = Path(os.environ.get("GA_AGENT_BIN", REPO / "build/native/src/gateway-agent"))
BOOT = "0b5e7c1e-aaaa-4bbb-8ccc-0123456789ab"

need_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                  reason="systemd-analyze not installed")


def unit_root(tmp_path):
    """A root with the units in /etc/systemd/system and the files their Exec lines name."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/libexec/gateway-agent").mkdir(parents=True)
    shutil.copy(AGENT, root / "usr/bin/gateway-agent")
    shutil.copy(SCRIPT, root / "usr/libexec/gateway-agent/")
    for u in UNITS.glob("gateway-agent*.*"):
        if u.suffix in (".service", ".path"):
            shutil.copy(u, root / "etc/systemd/system" / u.name)
    return root


@need_analyze
def test_units_verify(tmp_path):
    # verify resolves dependencies against the host's unit search path, so the copies point their
    # Exec lines at files that exist here.
    out = tmp_path / "units"
    out.mkdir()
    for u in UNITS.glob("gateway-agent*"):
        if u.suffix not in (".service", ".path"):
            continue
        text = u.read_text().replace("/usr/bin/gateway-agent", str(AGENT))
        text = text.replace("/usr/libexec/gateway-agent/gateway-agent-reboot-if-fresh", str(SCRIPT))
        (out / u.name).write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + sorted(map(str, out.iterdir())),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.strip() == "", r.stderr


@need_analyze
@pytest.mark.parametrize("unit,limit", [("gateway-agent.service", 1.2),
                                        ("gateway-agent-reboot.service", 1.0)])
def test_units_exposure_score(tmp_path, unit, limit):
    root = unit_root(tmp_path)
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={root}", unit],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    print(f"{unit}: exposure {m.group(1)}")
    assert float(m.group(1)) <= limit, r.stdout


def test_service_has_no_start_pre_and_does_not_restart_on_bad_conf():
    text = (UNITS / "gateway-agent.service").read_text()
    assert not re.search(r"^ExecStartPre=", text, re.M)
    assert re.search(r"^RestartPreventExitStatus=78$", text, re.M)
    assert re.search(r"^Wants=gateway-agent-reboot.path$", text, re.M)


def test_service_skips_the_start_while_no_identity_is_named():
    text = (UNITS / "gateway-agent.service").read_text()
    start = re.search(r"^ExecStart=(\S+) --config (\S+)$", text, re.M)
    cond = re.search(r"^ExecCondition=(\S+) --config (\S+) --has-identity$", text, re.M)
    assert start and cond, "ExecCondition= --has-identity with the ExecStart= conf"
    assert cond.groups() == start.groups()


class Oneshot:
    """The reboot script with every seam pointed into tmp_path."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.request = tmp_path / "reboot-request"
        self.history = tmp_path / "reboot-state/history"
        self.calls = tmp_path / "systemctl-calls"
        fake = tmp_path / "systemctl"
        fake.write_text(f'#!/bin/sh\necho "$*" >> {self.calls}\n')
        fake.chmod(0o755)
        (tmp_path / "boot_id").write_text(BOOT + "\n")
        self.env = dict(os.environ, SYSTEMCTL=str(fake), BOOT_ID_FILE=str(tmp_path / "boot_id"),
                        HISTORY=str(self.history))

    def write(self, boot=BOOT, age=0, now=None):
        now = int(time.time()) if now is None else now
        self.request.write_text(f"boot_id={boot}\ntime={now - age}\nrequested=whenever\n")

    def run(self, now=None):
        env = dict(self.env)
        if now is not None:
            env["NOW"] = str(now)
        return subprocess.run([str(SCRIPT), str(self.request)], env=env, capture_output=True,
                              text=True, timeout=30)

    def reboots(self):
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def test_fresh_request_reboots_once_and_is_consumed(tmp_path):
    o = Oneshot(tmp_path)
    o.write(age=2)
    r = o.run()
    assert r.returncode == 0, r.stderr
    assert o.reboots() == ["reboot"]
    assert not o.request.exists()
    assert len(o.history.read_text().split()) == 1
    # The path unit fires again only if the file came back; run again anyway: nothing happens.
    r = o.run()
    assert r.returncode == 0 and o.reboots() == ["reboot"]


@pytest.mark.parametrize("boot,age,why", [("11111111-2222-4333-8444-555555555555", 0, "another boot"),
                                          (BOOT, 61, "61s old"),
                                          (BOOT, -120, "-120s old")])
def test_stale_request_is_removed_and_ignored(tmp_path, boot, age, why):
    o = Oneshot(tmp_path)
    o.write(boot=boot, age=age)
    r = o.run()
    assert r.returncode == 0, r.stderr
    assert o.reboots() == []
    assert not o.request.exists()
    assert why in r.stderr, r.stderr


def test_malformed_request_is_removed_and_ignored(tmp_path):
    o = Oneshot(tmp_path)
    o.request.write_text("requested 2026-01-01T00:00:00Z\n")  # the old format: no boot id, no time
    r = o.run()
    assert r.returncode == 0 and o.reboots() == [] and not o.request.exists()
    assert "malformed" in r.stderr


def test_at_most_three_reboots_an_hour_across_boots(tmp_path):
    o = Oneshot(tmp_path)
    t0 = 1_800_000_000
    for i in range(3):  # three reboots, 10 minutes apart; each boot has the same id here
        o.write(now=t0 + 600 * i)
        assert o.run(now=t0 + 600 * i).returncode == 0
    assert o.reboots() == ["reboot"] * 3
    o.write(now=t0 + 1900)
    r = o.run(now=t0 + 1900)
    assert r.returncode == 1
    assert "refusing: 3 reboots in the last hour" in r.stderr, r.stderr
    assert o.reboots() == ["reboot"] * 3 and not o.request.exists()
    # An hour after the first, one slot is free again.
    o.write(now=t0 + 3601)
    assert o.run(now=t0 + 3601).returncode == 0
    assert o.reboots() == ["reboot"] * 4
    assert len(o.history.read_text().split()) == 3  # the expired entry was dropped


def test_no_request_does_nothing(tmp_path):
    o = Oneshot(tmp_path)
    r = o.run()
    assert r.returncode == 0 and o.reboots() == []


def test_reboot_oneshot_can_read_the_boot_id():
    # The script compares the request's boot id with /proc/sys/kernel/random/boot_id;
    # ProcSubset=pid hides /proc/sys, and the reboot then never happened (seen under qemu).
    assert "kernel/random/boot_id" in SCRIPT.read_text()
    text = (UNITS / "gateway-agent-reboot.service").read_text()
    assert not re.search(r"^ProcSubset=pid", text, re.M)
