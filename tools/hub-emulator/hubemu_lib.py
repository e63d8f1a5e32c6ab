"""Shared helpers for hubemu, hubctl and tempsensor: a small MQTT 3.1.1 client over TLS (stdlib
only, so any python3 works), the emulator conf reader and SAS token building."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import ssl
import struct
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.realpath(os.path.join(HERE, "..", ".."))
CONTROL_USER = "$hubctl"


class MqttError(Exception):
    pass


class ConnackError(MqttError):
    def __init__(self, code):
        super().__init__(f"CONNACK refused with code {code}")
        self.code = code


def _enc_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _remaining_length(n):
    out = bytearray()
    while True:
        d = n % 128
        n //= 128
        if n:
            d |= 0x80
        out.append(d)
        if not n:
            return bytes(out)


class Client:
    """Blocking MQTT 3.1.1 client: enough for the emulator's tools and tests."""

    def __init__(self, host, port, cafile, client_id, username, password, clean=True,
                 keepalive=60, timeout=10.0, server_hostname="localhost"):
        self.client_id = client_id
        self.keepalive = keepalive
        self.timeout = timeout
        self._buf = b""
        self._mid = 0
        self.inbox = []  # (topic, payload, qos) received while waiting for something else
        self.stash = []  # messages set aside by control_request
        ctx = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=server_hostname)
        except Exception:
            raw.close()
            raise
        self.sock.settimeout(timeout)
        flags = 0x02 if clean else 0
        payload = _enc_str(client_id)
        if username is not None:
            flags |= 0x80
            payload += _enc_str(username)
        if password is not None:
            flags |= 0x40
            payload += _enc_str(password)
        var = _enc_str("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
        self._send(0x10, var + payload)
        ptype, body = self._read_packet(time.monotonic() + timeout)
        if ptype != 2:
            raise MqttError(f"expected CONNACK, got packet type {ptype}")
        if body[1] != 0:
            self.close()
            raise ConnackError(body[1])
        self.session_present = bool(body[0] & 1)
        self._last_send = time.monotonic()

    # -- wire -------------------------------------------------------------------------------
    def _send(self, first, body):
        self.sock.sendall(bytes([first]) + _remaining_length(len(body)) + body)
        self._last_send = time.monotonic()

    def _recv_some(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(min(remaining, 1.0))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        if not data:
            raise MqttError("connection closed by the server")
        self._buf += data
        return True

    def _read_packet(self, deadline):
        while True:
            if len(self._buf) >= 2:
                mult, n, i = 1, 0, 1
                complete = False
                while i < len(self._buf) and i <= 4:
                    d = self._buf[i]
                    n += (d & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not d & 0x80:
                        complete = True
                        break
                if complete and len(self._buf) >= i + n:
                    first = self._buf[0]
                    body = self._buf[i:i + n]
                    self._buf = self._buf[i + n:]
                    return first >> 4, (first, body) if first >> 4 == 3 else body
            self._maybe_ping()
            self._recv_some(deadline)

    def _maybe_ping(self):
        if self.keepalive and time.monotonic() - self._last_send > self.keepalive / 2:
            self._send(0xC0, b"")

    def _handle_publish(self, first_body):
        first, body = first_body
        qos = (first >> 1) & 3
        tlen = struct.unpack("!H", body[:2])[0]
        topic = body[2:2 + tlen].decode("utf-8", "replace")
        pos = 2 + tlen
        if qos:
            mid = struct.unpack("!H", body[pos:pos + 2])[0]
            pos += 2
            self._send(0x40, struct.pack("!H", mid))
        return topic, bytes(body[pos:]), qos

    def _next_mid(self):
        self._mid = self._mid % 65535 + 1
        return self._mid

    # -- API --------------------------------------------------------------------------------
    def subscribe(self, filters, qos=1):
        mid = self._next_mid()
        body = struct.pack("!H", mid)
        for f in filters:
            body += _enc_str(f) + bytes([qos])
        self._send(0x82, body)
        deadline = time.monotonic() + self.timeout
        while True:
            ptype, b = self._read_packet(deadline)
            if ptype == 9 and struct.unpack("!H", b[:2])[0] == mid:
                return list(b[2:])
            if ptype == 3:
                self.inbox.append(self._handle_publish(b))

    def publish(self, topic, payload, qos=0):
        if isinstance(payload, str):
            payload = payload.encode()
        body = _enc_str(topic)
        mid = None
        if qos:
            mid = self._next_mid()
            body += struct.pack("!H", mid)
        self._send(0x30 | (qos << 1), body + payload)
        if not qos:
            return
        deadline = time.monotonic() + self.timeout
        while True:
            ptype, b = self._read_packet(deadline)
            if ptype == 4 and struct.unpack("!H", b[:2])[0] == mid:
                return
            if ptype == 3:
                self.inbox.append(self._handle_publish(b))

    def receive(self, deadline):
        """Next PUBLISH as (topic, payload, qos), or None at the deadline (monotonic)."""
        if self.inbox:
            return self.inbox.pop(0)
        while True:
            try:
                ptype, b = self._read_packet(deadline)
            except TimeoutError:
                return None
            if ptype == 3:
                return self._handle_publish(b)

    def disconnect(self):
        try:
            self._send(0xE0, b"")
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# -- emulator dir and conf ------------------------------------------------------------------
def read_conf(path):
    conf = {"hub": None, "edge": None, "identities": {}, "routes": []}
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            if s.startswith("route "):
                conf["routes"].append(s[6:].strip())
                continue
            w = s.split(" #")[0].split()
            if w[0] == "hub":
                conf["hub"] = w[1]
            elif w[0] == "edge":
                conf["edge"] = w[1]
            elif w[0] == "device":
                conf["identities"][w[1]] = w[2]
            elif w[0] == "module":
                conf["identities"][f"{w[1]}/{w[2]}"] = w[3]
    return conf


def conf_path(d):
    p = os.path.join(d, "emulator.conf.path")
    if os.path.exists(p):
        with open(p) as f:
            return f.read().strip()
    return os.path.join(d, "emulator.conf")


def read_port(d):
    try:
        with open(os.path.join(d, "port")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        sys.exit(f"error: no emulator port in {d} (is it started? run hubemu start --dir {d})")


def make_sas(host, identity, key_b64, ttl=3600, expiry=None):
    dev, _, mod = identity.partition("/")
    resource = f"{host}/devices/{dev}" + (f"/modules/{mod}" if mod else "")
    sr = urllib.parse.quote(resource, safe="")
    se = str(int(expiry if expiry is not None else time.time() + ttl))
    key = base64.b64decode(key_b64)
    sig = base64.b64encode(hmac.new(key, f"{sr}\n{se}".encode(), hashlib.sha256).digest()).decode()
    return f"SharedAccessSignature sr={sr}&sig={urllib.parse.quote(sig, safe='')}&se={se}"


def username_for(host, identity, client_type="hubemu-python"):
    return (f"{host}/{identity}/?api-version=2021-04-12&DeviceClientType="
            f"{urllib.parse.quote(client_type, safe='')}")


def connect_identity(d, identity, clean=True, timeout=10.0, keepalive=60):
    conf = read_conf(conf_path(d))
    if identity not in conf["identities"]:
        sys.exit(f"error: identity '{identity}' is not in {conf_path(d)}")
    key = conf["identities"][identity]
    return Client("127.0.0.1", read_port(d), os.path.join(d, "ca.pem"), identity,
                  username_for(conf["hub"], identity), make_sas(conf["hub"], identity, key),
                  clean=clean, timeout=timeout, keepalive=keepalive)


def connect_control(d, timeout=10.0):
    with open(os.path.join(d, "control.secret")) as f:
        secret = f.read().strip()
    cid = "$hubctl/" + secrets.token_hex(6)
    return Client("127.0.0.1", read_port(d), os.path.join(d, "ca.pem"), cid, CONTROL_USER,
                  secret, clean=True, timeout=timeout)


def control_request(client, request, timeout):
    reqid = secrets.token_hex(6)
    client.publish("$hubctl/req/" + reqid, json.dumps(request), qos=1)
    deadline = time.monotonic() + timeout
    while True:
        msg = client.receive(deadline)
        if msg is None:
            raise TimeoutError(f"no answer to '{request.get('cmd')}' within {timeout:g} s")
        topic, payload, _ = msg
        if topic == "$hubctl/res/" + reqid:
            return json.loads(payload)
        if topic == "$hubctl/msg":
            client.stash.append(msg)  # follow output that arrived first; the caller reads it
