"""Faults of the gateway itself: a state dir that fills up or is read-only, and reboots in the
middle of a stream. The full and read-only disks are private tmpfs mounts in a mount namespace
made for the agent alone (unshare), so the machine running the tests is not touched."""
import errno
import json
import os
import shutil
import signal
import time

import pytest

from harness import SLOW, assert_all_in_order, seqs

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="a private tmpfs needs root and unshare (CI runs as root)")


def private_tmpfs(agent, options):
    """The agent runs in its own mount namespace with its state dir on a small tmpfs."""
    agent.cmd_prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        f'mount -t tmpfs -o {options} gatest "{agent.state}" && exec "$@"', "sh"]


def stats(hub):
    return hub.twin()["reported"].get("agentStats", {})


def fill(path):
    """Writes until the file system is full; returns the bytes written."""
    total = 0
    with open(path, "wb", buffering=0) as f:
        for _ in range(100000):  # bounded: a 256 KiB tmpfs fills after 64 chunks
            try:
                total += f.write(b"\0" * 4096)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                return total
    raise AssertionError("the tmpfs never filled up")


@needs_root
def test_disk_full_at_run_time_alerts_still_sent_counted_and_journal_repaired(env):
    hub, make_agent, send = env
    agent = make_agent(start=False, log__stats_interval=2)
    private_tmpfs(agent, "size=256k,mode=0700")
    agent.start()
    for i in range(0, 20):
        send(i)
    hub.messages(wait_count=20, timeout=30 * SLOW)

    # The state dir as the agent sees it, through its own mount namespace.
    filler = f"/proc/{agent.proc.pid}/root{agent.state}/filler"
    assert fill(filler) > 0
    # The journal's last page still has room for a few records: send enough to need a new one.
    for i in range(20, 100):
        send(i)
    agent.wait_log("cannot write the alert journal", 20 * SLOW, "the journal write failure")
    assert "No space left on device" in agent.log()
    msgs = hub.messages(wait_count=100, timeout=60 * SLOW)
    assert_all_in_order(seqs(msgs), list(range(100)))  # sent although not persisted
    agent.wait_for(lambda: stats(hub).get("queueNotPersisted", 0) >= 1, 30 * SLOW,
                   "queueNotPersisted reported")
    assert agent.proc.poll() is None

    os.remove(filler)
    agent.wait_log("alert journal writable again", 30 * SLOW, "the journal repaired")
    for i in range(100, 120):
        send(i)
    msgs = hub.messages(wait_count=120, timeout=60 * SLOW)
    assert_all_in_order(seqs(msgs), list(range(120)))
    counted = stats(hub).get("queueNotPersisted", 0)
    assert 1 <= counted <= 80, counted  # only what arrived while the disk was full
    log = agent.log()
    assert log.count("cannot write the alert journal") == 1, "said once, not per alert"


@needs_root
def test_read_only_state_dir_at_start_runs_in_memory_and_says_so(env):
    hub, make_agent, send = env
    agent = make_agent(start=False, log__stats_interval=2)
    private_tmpfs(agent, "ro,size=64k")
    agent.start()
    assert "starting anyway" in agent.log()
    assert "Read-only file system" in agent.log()
    for i in range(20):
        send(i)
    msgs = hub.messages(wait_count=20, timeout=60 * SLOW)
    assert_all_in_order(seqs(msgs), list(range(20)))
    agent.wait_for(lambda: stats(hub).get("queueNotPersisted", 0) == 20, 30 * SLOW,
                   "all 20 counted as not persisted")
    assert agent.proc.poll() is None


def test_simulated_reboot_mid_stream_loses_nothing(env):
    hub, make_agent, send = env
    agent = make_agent(reboot__mode="simulate", reboot__simulate_delay=0)
    for i in range(0, 30):
        send(i)
    answer = hub.method("rebootDevice")
    assert answer["status"] == 200, answer
    for i in range(30, 60):  # keeps coming while the link goes down and up again
        send(i)
    agent.wait_log("reboot: simulated reboot #1", 10 * SLOW)
    msgs = hub.messages(wait_count=60, timeout=60 * SLOW)
    assert_all_in_order(seqs(msgs), list(range(60)))
    agent.wait_for(lambda: hub.twin()["reported"].get("rebootTime"), 30 * SLOW,
                   "rebootTime reported after the simulated reboot")


def test_reboot_through_the_request_file_mid_stream_loses_nothing(env):
    """What systemd does on a real reboot: the path unit sees the request, the agent gets SIGTERM
    with alerts still queued (hub away), and a new agent process starts on the same state dir."""
    hub, make_agent, send = env
    agent = make_agent(reboot__mode="request-file")
    for i in range(0, 20):
        send(i)
    assert hub.method("rebootDevice")["status"] == 200
    request = agent.state / "reboot-request"
    agent.wait_for(request.exists, 10 * SLOW, "reboot-request written")
    hub.stop()  # the link goes first on a real shutdown; alerts now wait in the store
    for i in range(20, 40):
        send(i)
    agent.wait_for(lambda: "next connect attempt" in agent.log(), 10 * SLOW, "agent offline")
    time.sleep(1)
    request.unlink()  # gateway-agent-reboot.service consumes the request
    assert agent.stop(sig=signal.SIGTERM) == 0, "clean stop on SIGTERM"
    hub.restart()
    after = make_agent(start=False, reboot__mode="request-file")
    after.start(wait_online=False)
    # Readings sent before the new process listens are not accepted by anyone: wait for it.
    after.wait_for(lambda: after.log().count("started: identity") == 2, 30 * SLOW,
                   "the new agent process listening")
    for i in range(40, 50):
        send(i)
    msgs = hub.messages(wait_count=50, timeout=90 * SLOW)
    assert_all_in_order(seqs(msgs), list(range(50)))
    got = seqs(msgs)
    assert len(got) - len(set(got)) <= 20, "duplicates only from the unacknowledged tail"
    print("duplicates after reboot:", len(got) - len(set(got)), json.dumps(stats(hub)))
