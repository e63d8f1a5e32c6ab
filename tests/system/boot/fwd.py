#!/usr/bin/python3
"""guestfwd bridge: qemu's user networking runs this once per guest connection to 10.0.2.100:8883,
with that connection on stdin/stdout, and it relays to the hub emulator on 127.0.0.1:PORT. So the
host side only ever uses loopback. While the file CUT exists the hub is "unreachable": new
connections are closed at once and live ones are cut (a network outage the host controls).
Usage: fwd.py PORT CUT DEADLINE_EPOCH PIDDIR (the relay ends by itself at the deadline; it keeps
a file named by its pid in PIDDIR while it runs, so the run can end any that are left)."""
import os
import select
import socket
import sys
import time


def main():
    port, cut, deadline, piddir = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
    if os.path.exists(cut):
        return 0
    mark = os.path.join(piddir, str(os.getpid()))
    open(mark, "w").close()
    try:
        relay(port, cut, deadline)
    finally:
        os.unlink(mark)
    return 0


def relay(port, cut, deadline):
    hub = socket.create_connection(("127.0.0.1", port), timeout=10)
    hub.settimeout(None)
    guest_in, guest_out = 0, 1
    while time.time() < deadline and not os.path.exists(cut):
        ready, _, _ = select.select([guest_in, hub], [], [], 0.2)
        if guest_in in ready:
            data = os.read(guest_in, 65536)
            if not data:
                break
            hub.sendall(data)
        if hub in ready:
            data = hub.recv(65536)
            if not data:
                break
            view = memoryview(data)
            while view:
                view = view[os.write(guest_out, view):]
    hub.close()


if __name__ == "__main__":
    sys.exit(main())
