#!/usr/bin/python3
"""Runs one shell command in the guest through its serial console (the root autologin shell on
ttyAMA0, reached over qemu's chardev unix socket) and prints its output; exits with its status.
Usage: guestsh.py SOCKET TIMEOUT COMMAND. Output is framed by markers that the terminal's echo of
the typed line cannot produce ("GA""B" is typed, "GAB" is printed)."""
import os
import re
import socket
import sys
import time


def main():
    path, timeout, command = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    nonce = os.urandom(4).hex()
    begin, end = f"GAB-{nonce}", f"GAE-{nonce}"
    line = (f"stty -echo cols 1000 2>/dev/null; echo GA''B-{nonce}; ( {command} ) 2>&1; "
            f"echo GA''E-{nonce} $?\n")
    deadline = time.time() + timeout
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1)
    s.connect(path)
    buf = b""
    sent_at = 0.0
    while time.time() < deadline:
        if time.time() - sent_at > 30 and begin.encode() not in buf:
            # (Re)type the line until the shell answers: the first one may go to a login prompt.
            s.sendall(b"\x03\n" + line.encode())
            sent_at = time.time()
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        text = buf.decode("utf-8", "replace")
        m = re.search(re.escape(begin) + r"\r?\n(.*?)" + re.escape(end) + r" (\d+)", text, re.S)
        if m:
            sys.stdout.write(m.group(1).replace("\r\n", "\n"))
            return int(m.group(2))
    sys.stderr.write(f"guestsh: no answer in {timeout:.0f} s to: {command}\n")
    return 124


if __name__ == "__main__":
    sys.exit(main())
