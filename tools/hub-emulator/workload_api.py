#!/usr/bin/env python3
"""workload_api.py: the IoT Edge workload API of the hub emulator, on a Unix socket.

  workload_api.py --dir HUBDIR --socket PATH [--genid G] [--faults FILE] [--log FILE]

Serves what a module needs (docs/iot-edge.md):
  GET  /trust-bundle?api-version=V               -> 200 {"certificate": HUBDIR/ca.pem}
  POST /modules/{m}/genid/{g}/sign?api-version=V -> 200 {"digest": base64 HMAC-SHA256}
       body {"keyId":"primary","algo":"HMACSHA256","data":"<base64>"}, signed with the key the
       emulator holds for {edge device}/{m} (the same key its broker checks SAS tokens with)
Errors are {"message": "..."} with 400, 404 or 405, like the edge runtime's.

Faults (read again whenever FILE changes; counters start over): one rule a line,
  ENDPOINT MODE [COUNT]
ENDPOINT is sign, bundle or any; the first rule that matches a request and has COUNT left (no
COUNT: forever) decides it. MODE:
  403 | 404 | 500   that status with a {"message"} body
  close             read the request, close the connection without a reply
  oversized         200 with a 100 KiB JSON body
  nonjson           200 with an HTML body
  multi             (bundle) the bundle with an unrelated CA first, then the emulator's CA
  badcert           (bundle) a bundle without any PEM certificate
Every request is appended to the log (default HUBDIR/workload.log) as one JSON line:
  {"t": unix time, "method", "path", "status" (0: closed without a reply), "fault"}.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import hubemu_lib as lib  # noqa: E402

MIN_API_VERSION = "2018-06-28"
MAX_REQUEST = 64 * 1024
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 500: "Internal Server Error"}


class Faults:
    """The rules of the faults file, re-read when it changes."""

    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.rules = []
        self.lock = threading.Lock()

    def _reload(self):
        try:
            st = os.stat(self.path)
        except OSError:
            self.rules, self.mtime = [], None
            return
        key = (st.st_mtime_ns, st.st_size)
        if key == self.mtime:
            return
        self.mtime = key
        rules = []
        with open(self.path) as f:
            for line in f:
                w = line.split("#")[0].split()
                if len(w) >= 2:
                    rules.append({"endpoint": w[0], "mode": w[1],
                                  "left": int(w[2]) if len(w) > 2 else None})
        self.rules = rules

    def take(self, endpoint):
        with self.lock:
            self._reload()
            for r in self.rules:
                if r["endpoint"] not in (endpoint, "any"):
                    continue
                if r["left"] is None:
                    return r["mode"]
                if r["left"] > 0:
                    r["left"] -= 1
                    return r["mode"]
            return None


class Server:
    def __init__(self, args):
        self.dir = os.path.abspath(args.dir)
        self.socket_path = args.socket
        self.genid = args.genid
        self.faults = Faults(args.faults or os.path.join(self.dir, "workload.faults"))
        self.log_path = args.log or os.path.join(self.dir, "workload.log")
        self.log_lock = threading.Lock()

    # -- helpers --------------------------------------------------------------------------
    def log(self, method, path, status, fault):
        line = json.dumps({"t": time.time(), "method": method, "path": path, "status": status,
                           "fault": fault})
        with self.log_lock, open(self.log_path, "a") as f:
            f.write(line + "\n")

    @staticmethod
    def send(conn, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n").encode()
        conn.sendall(head + data)

    def error(self, conn, status, message):
        self.send(conn, status, json.dumps({"message": message}))
        return status

    @staticmethod
    def read_request(conn):
        buf = b""
        conn.settimeout(5.0)
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return None
            buf += chunk
            if len(buf) > MAX_REQUEST:
                return None
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = (lines[0].split(" ") + ["", "", ""])[:3]
        headers = {}
        for h in lines[1:]:
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_REQUEST:
            return None
        while len(body) < length:
            chunk = conn.recv(4096)
            if not chunk:
                return None
            body += chunk
        return method, target, headers, body[:length]

    # -- endpoints ------------------------------------------------------------------------
    def handle(self, conn):
        req = self.read_request(conn)
        if req is None:
            return
        method, target, headers, body = req
        url = urllib.parse.urlsplit(target)
        parts = url.path.strip("/").split("/")
        endpoint = "bundle" if url.path == "/trust-bundle" else (
            "sign" if len(parts) == 5 and parts[0] == "modules" and parts[2] == "genid"
            and parts[4] == "sign" else "other")
        fault = self.faults.take(endpoint)
        status = self.answer(conn, method, url, parts, endpoint, headers, body, fault)
        self.log(method, url.path, status, fault)

    def answer(self, conn, method, url, parts, endpoint, headers, body, fault):
        if fault == "close":
            return 0
        if fault in ("403", "404", "500"):
            msgs = {"403": "Module not found or the caller is not the module's own container",
                    "404": "Module not found", "500": "Internal error (emulated)"}
            return self.error(conn, int(fault), msgs[fault])
        if fault == "oversized":
            self.send(conn, 200, json.dumps({"digest": "A" * (100 * 1024)}))
            return 200
        if fault == "nonjson":
            self.send(conn, 200, "<html><body>502 Bad Gateway</body></html>", "text/html")
            return 200
        q = urllib.parse.parse_qs(url.query)
        version = (q.get("api-version") or [""])[0]
        if not version:
            return self.error(conn, 400, "api-version is required")
        if version < MIN_API_VERSION:
            return self.error(conn, 400, f"api-version {version} is not supported")
        if endpoint == "bundle":
            if method != "GET":
                return self.error(conn, 405, "method not allowed")
            with open(os.path.join(self.dir, "ca.pem")) as f:
                pem = f.read()
            if fault == "multi":
                with open(os.path.join(self.dir, "other-ca.pem")) as f:
                    pem = f.read() + pem
            if fault == "badcert":
                pem = "no certificate here\n"
            self.send(conn, 200, json.dumps({"certificate": pem}))
            return 200
        if endpoint != "sign":
            return self.error(conn, 404, f"no such endpoint {url.path}")
        if method != "POST":
            return self.error(conn, 405, "method not allowed")
        module = urllib.parse.unquote(parts[1])
        genid = urllib.parse.unquote(parts[3])
        if self.genid is not None and genid != self.genid:
            return self.error(conn, 404, f"module {module} with generation id {genid} not found")
        if "application/json" not in headers.get("content-type", ""):
            return self.error(conn, 400, "Content-Type must be application/json")
        try:
            req = json.loads(body)
            data = base64.b64decode(req["data"], validate=True)
        except (ValueError, KeyError, TypeError):
            return self.error(conn, 400, "body must be JSON with keyId, algo and base64 data")
        if req.get("keyId") != "primary" or req.get("algo") != "HMACSHA256":
            return self.error(conn, 400, "keyId must be primary and algo HMACSHA256")
        conf = lib.read_conf(lib.conf_path(self.dir))
        key = conf["identities"].get(f"{conf['edge']}/{module}")
        if key is None:
            return self.error(conn, 404, f"module {module} not found")
        digest = hmac.new(base64.b64decode(key), data, hashlib.sha256).digest()
        self.send(conn, 200, json.dumps({"digest": base64.b64encode(digest).decode()}))
        return 200

    # -- loop -----------------------------------------------------------------------------
    def serve(self):
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(self.socket_path)
        srv.listen(10)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.worker, args=(conn,), daemon=True).start()
        srv.close()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def worker(self, conn):
        try:
            self.handle(conn)
        except OSError:
            pass
        finally:
            conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True, help="the emulator's directory (ca.pem, emulator.conf)")
    p.add_argument("--socket", required=True, help="the Unix socket to listen on")
    p.add_argument("--genid", default=None, help="the only generation id accepted (default: any)")
    p.add_argument("--faults", default=None, help="faults file (default HUBDIR/workload.faults)")
    p.add_argument("--log", default=None, help="request log (default HUBDIR/workload.log)")
    Server(p.parse_args()).serve()


if __name__ == "__main__":
    main()
