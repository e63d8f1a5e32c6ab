#!/usr/bin/env python3
"""Measures the emulator: start-up time, and messages/s through the tempSensor -> filter/input1
route and through filter/outputs -> $upstream. Usage: bench_route.py --dir DIR [--count N]
(starts and stops its own emulator in DIR). Python clients on both ends: the numbers are a lower
bound on what the broker+plugin can do."""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)
import hubemu_lib as lib  # noqa: E402


def publish_nowait(c, topic, payload, mid):
    body = lib._enc_str(topic) + struct.pack("!H", mid) + payload
    c._send(0x32, body)


def drain_pubacks(c, n, timeout):
    deadline = time.monotonic() + timeout
    got = 0
    while got < n:
        ptype, _ = c._read_packet(deadline)
        if ptype == 4:
            got += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--count", type=int, default=5000)
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    shutil.rmtree(d, ignore_errors=True)
    emu = [sys.executable, os.path.join(HERE, "hubemu")]
    subprocess.run(emu + ["start", "--dir", d], check=True, capture_output=True)  # certs, conf
    subprocess.run(emu + ["stop", "--dir", d], check=True, capture_output=True)
    starts = []
    for _ in range(3):
        t = time.monotonic()
        subprocess.run(emu + ["start", "--dir", d], check=True, capture_output=True)
        starts.append(time.monotonic() - t)
        subprocess.run(emu + ["stop", "--dir", d], check=True, capture_output=True)
    subprocess.run(emu + ["start", "--dir", d], check=True, capture_output=True)
    try:
        n = a.count
        body = json.dumps({"machine": {"temperature": 26.5, "pressure": 1.4},
                           "ambient": {"temperature": 21.0, "humidity": 25},
                           "timeCreated": "2026-11-22T14:31:21.1234567Z"}).encode()
        filt = lib.connect_identity(d, "edgedev/filter", clean=False, timeout=30)
        filt.subscribe(["devices/edgedev/modules/filter/inputs/input1/#"])
        sensor = lib.connect_identity(d, "edgedev/tempSensor", timeout=30)
        topic = ("devices/edgedev/modules/tempSensor/messages/events/sequenceNumber=1&"
                 "%24.ct=application%2Fjson&%24.ce=utf-8&%24.on=temperatureOutput")
        received = []

        def rx():
            deadline = time.monotonic() + 120
            while len(received) < n:
                m = filt.receive(deadline)
                if m is None:
                    return
                received.append(time.monotonic())
        th = threading.Thread(target=rx)
        th.start()
        t0 = time.monotonic()
        for i in range(n):
            publish_nowait(sensor, topic, body, i % 65535 + 1)
            if i % 500 == 499:
                drain_pubacks(sensor, 500, 60)
        th.join(130)
        route_s = (received[-1] - t0) if len(received) == n else float("nan")
        # filter -> $upstream (recorded + journaled by the plugin)
        out_topic = ("devices/edgedev/modules/filter/messages/events/%24.on=output1&"
                     "%24.ct=application%2Fjson&%24.ce=utf-8&MessageType=Alert")
        t1 = time.monotonic()
        for i in range(n):
            publish_nowait(filt, out_topic, body, i % 65535 + 1)
            if i % 500 == 499:
                drain_pubacks(filt, 500, 60)
        ctl = [sys.executable, os.path.join(HERE, "hubctl"), "--dir", d]
        subprocess.run(ctl + ["messages", "--since", str(n - 1), "--wait-count", "1",
                              "--timeout", "60"], check=True, capture_output=True)
        up_s = time.monotonic() - t1
        print(json.dumps({
            "startup_s": [round(s, 3) for s in starts],
            "route_to_input": {"messages": len(received), "seconds": round(route_s, 3),
                               "per_s": round(n / route_s)},
            "to_upstream": {"messages": n, "seconds": round(up_s, 3), "per_s": round(n / up_s)},
        }))
        sensor.disconnect()
        filt.disconnect()
    finally:
        subprocess.run(emu + ["stop", "--dir", d], capture_output=True)


if __name__ == "__main__":
    main()
