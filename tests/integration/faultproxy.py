"""A fault-injecting TCP proxy for the integration tests (Python 3 standard library only).

It listens on 127.0.0.1 (a free port) and forwards every accepted connection to 127.0.0.1:<target
port>. The test drives it in-process:

    proxy = FaultProxy(hub.port).start()
    proxy.port                        # point the agent here ([hub] port)
    proxy.cut_mid_record("s2c")       # next chunk carrying a TLS record header in that direction:
                                      # forward the header and a few body bytes, then RST both
    proxy.blackhole()                 # keep every TCP connection open, forward nothing
                                      # (a silent peer)
    proxy.refuse_new(True)            # reset new connections (after their first bytes, so the
                                      # client sees the reset during the TLS handshake)
    proxy.passthrough()               # forward again (connections blackholed stay dead)
    proxy.stats()                     # counters
    proxy.close()                     # stops every thread and closes every socket

Each direction's byte stream is followed as TLS records (5-byte header: content type, version,
2-byte length), so a cut always lands inside a record body. Everything is bounded: sockets have
timeouts, every loop checks the stop flag at least every POLL seconds, close() joins the threads.
"""
import collections
import fcntl
import selectors
import socket
import struct
import termios
import threading
import time

HOST = "127.0.0.1"
POLL = 0.1          # seconds: how often every loop looks at the stop flag
IO_TIMEOUT = 5.0    # seconds: connect/send timeout on every socket
CHUNK = 65536
# change_cipher_spec, alert, handshake, application_data, heartbeat
TLS_TYPES = (20, 21, 22, 23, 24)
DIRECTIONS = ("c2s", "s2c")


def drain(sock, timeout=0.5):
    """Wait (bounded) until the kernel has sent and got acknowledged what sendall queued, so a
    reset right after it cannot discard the bytes (SO_LINGER 0 drops the send queue)."""
    deadline = time.monotonic() + timeout
    buf = bytearray(4)
    while time.monotonic() < deadline:
        try:
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)
        except OSError:
            return
        if struct.unpack("i", buf)[0] == 0:
            return
        time.sleep(0.005)


def reset_close(sock):
    """Close with SO_LINGER 0: the peer gets a TCP RST, not a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class RecordTracker:
    """Follows a TLS record stream across arbitrary chunk boundaries."""

    def __init__(self, on_record=None):
        self.on_record = on_record  # called with (content type, length) for every header
        self.header = b""     # bytes of a header not complete yet
        self.remaining = 0    # body bytes of the current record still to come
        self.records = 0      # record headers seen
        self.bad = 0          # headers that do not look like TLS (stream out of sync)

    def header_offsets(self, data):
        """(offset, content type, body length) of every record header that starts in data and
        is complete in it, in order; consumes data."""
        found = []
        i = 0
        n = len(data)
        while i < n:
            if self.remaining:
                step = min(self.remaining, n - i)
                self.remaining -= step
                i += step
                continue
            start = i - len(self.header)
            need = 5 - len(self.header)
            self.header += data[i:i + need]
            i += min(need, n - i)
            if len(self.header) < 5:
                break
            ctype, major, _minor, length = struct.unpack("!BBBH", self.header)
            self.header = b""
            self.records += 1
            if ctype not in TLS_TYPES or major != 3:
                self.bad += 1
            self.remaining = length
            if self.on_record:
                self.on_record(ctype, length)
            if start >= 0:
                found.append((start, ctype, length))
        return found


class _Conn:
    """One proxied connection, served by one thread with a selector over both sockets."""

    def __init__(self, proxy, client, ident):
        self.proxy = proxy
        self.client = client
        self.upstream = None
        self.ident = ident
        self.blackholed = False  # set by the proxy (under its lock); never cleared
        self.refused = False
        self.trackers = {d: RecordTracker(self._recorder(d)) for d in DIRECTIONS}
        self.thread = threading.Thread(target=self._run, name=f"faultproxy-conn-{ident}",
                                       daemon=True)

    def _recorder(self, direction):
        def record(ctype, length):
            self.proxy.records.append((time.monotonic(), self.ident, direction, ctype, length,
                                       self.blackholed))
        return record

    # -- thread body --
    def _run(self):
        try:
            if self.refused:
                self._refuse()
                return
            self.upstream = socket.create_connection((HOST, self.proxy.target_port),
                                                     timeout=IO_TIMEOUT)
            self.upstream.settimeout(IO_TIMEOUT)
            self._pump()
        except ConnectionResetError:
            self._close(reset=True)  # a reset on one side is passed on as a reset
        except OSError:
            pass
        finally:
            self._close(reset=False)
            self.proxy._forget(self)

    def _refuse(self):
        # Wait (bounded) for the first client bytes, the TLS ClientHello, so the reset hits the
        # handshake and not just the TCP accept. (paho sends it up to ~1 s after the TCP connect
        # when it re-uses a client: its socket loop notices the completed connect once a second.)
        deadline = time.monotonic() + 3.0
        self.client.settimeout(POLL)
        while time.monotonic() < deadline and not self.proxy._stopping.is_set():
            try:
                data = self.client.recv(CHUNK)
            except socket.timeout:
                continue
            except OSError:
                break
            if data:
                self.proxy._count("hello_before_reset", 1)
            break
        self.proxy._count("refused", 1)
        reset_close(self.client)

    def _pump(self):
        sel = selectors.DefaultSelector()
        try:
            sel.register(self.client, selectors.EVENT_READ, "c2s")
            sel.register(self.upstream, selectors.EVENT_READ, "s2c")
            open_dirs = {"c2s", "s2c"}
            while open_dirs and not self.proxy._stopping.is_set():
                for key, _ in sel.select(POLL):
                    direction = key.data
                    src = key.fileobj
                    data = src.recv(CHUNK)
                    if not data:
                        sel.unregister(src)
                        open_dirs.discard(direction)
                        if direction == "c2s":
                            if self.blackholed:
                                return  # the client gave up on its dead connection
                        elif self.blackholed:
                            continue  # a silent peer never closes: keep the client's side open
                        self._dst(direction).shutdown(socket.SHUT_WR)
                        continue
                    if self.blackholed:
                        self.trackers[direction].header_offsets(data)  # records stay observable
                        self.proxy._count(f"dropped_{direction}", len(data))
                        continue
                    if self._forward(direction, data):
                        return  # cut: both sockets reset
            # Both sides finished (or stop): normal close.
        finally:
            sel.close()

    def _dst(self, direction):
        return self.upstream if direction == "c2s" else self.client

    def _forward(self, direction, data):
        """Forward data; returns True when a cut happened (sockets are gone)."""
        offsets = self.trackers[direction].header_offsets(data)
        cut = self.proxy._cut_for(direction) if offsets else None
        if cut is None:
            self._dst(direction).sendall(data)
            self.proxy._count(f"bytes_{direction}", len(data))
            return False
        start, ctype, length = offsets[0]
        body = min(cut, max(length - 1, 0), len(data) - start - 5)
        keep = start + 5 + max(body, 0)
        self._dst(direction).sendall(data[:keep])
        drain(self._dst(direction))
        self.proxy._count(f"bytes_{direction}", keep)
        self.proxy._cut_done(direction, ctype, length, body)
        self._close(reset=True)
        return True

    def _close(self, reset):
        for s in (self.client, self.upstream):
            if s is None:
                continue
            if reset:
                reset_close(s)
            else:
                try:
                    s.close()
                except OSError:
                    pass


class FaultProxy:
    """Listens on 127.0.0.1:<free port> (self.port), forwards to 127.0.0.1:target_port."""

    def __init__(self, target_port):
        self.target_port = int(target_port)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._conns = set()
        self._threads = []           # every connection thread started, joined by close()
        self._mode = "pass"          # pass | blackhole
        self._refuse = False
        self._cut = None             # (direction or None for either, body bytes to keep)
        self._cut_event = threading.Event()
        self._counters = {"accepted": 0, "refused": 0, "hello_before_reset": 0, "cuts": 0,
                          "blackholed": 0, "bytes_c2s": 0, "bytes_s2c": 0, "dropped_c2s": 0,
                          "dropped_s2c": 0, "records_c2s": 0, "records_s2c": 0,
                          "bad_headers": 0}
        # (direction, content type, record length, body bytes forwarded) of the last cut
        self.last_cut = None
        self.cut_time = None         # time.monotonic() of the last cut
        # Recent TLS record headers seen: (time.monotonic(), connection number, direction,
        # content type, length, blackholed), whether forwarded or dropped.
        self.records = collections.deque(maxlen=4096)
        self._seq = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(16)
        self._listener.settimeout(POLL)
        self.port = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="faultproxy-accept",
                                               daemon=True)

    # -- control, from the test --
    def start(self):
        self._accept_thread.start()
        return self

    def passthrough(self):
        """Forward both ways for new connections. A connection blackholed stays dead: bytes were
        dropped, so its TLS stream could not continue anyway."""
        with self._lock:
            self._mode = "pass"

    def blackhole(self):
        """Every open connection, and every new one until passthrough(), stays open but
        nothing is forwarded any more in either direction and no close is passed on."""
        with self._lock:
            self._mode = "blackhole"
            for c in self._conns:
                if not c.blackholed and not c.refused:
                    c.blackholed = True
                    self._counters["blackholed"] += 1

    def refuse_new(self, on=True):
        with self._lock:
            self._refuse = bool(on)

    def cut_mid_record(self, direction="s2c", body_bytes=3):
        """Arm one cut: the next chunk in direction ('s2c', 'c2s' or None for either) that holds
        a TLS record header is forwarded up to that header plus at most body_bytes of its body
        (always less than the whole record), then both sockets are reset."""
        if direction not in DIRECTIONS + (None,):
            raise ValueError(direction)
        with self._lock:
            self._cut = (direction, int(body_bytes))
            self._cut_event.clear()

    def wait_cut(self, timeout):
        """True once the armed cut has happened."""
        return self._cut_event.wait(timeout)

    def stats(self):
        with self._lock:
            d = dict(self._counters)
            d["open"] = len(self._conns)
            for c in self._conns:
                for direction, t in c.trackers.items():
                    d[f"records_{direction}"] += t.records
                    d["bad_headers"] += t.bad
            return d

    def close(self):
        self._stopping.set()
        try:
            self._listener.close()
        except OSError:
            pass
        if self._accept_thread.is_alive():
            self._accept_thread.join(timeout=2 + IO_TIMEOUT)
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout=2 + IO_TIMEOUT)
        alive = [t.name for t in [self._accept_thread] + threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"fault proxy threads did not stop: {alive}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- internals --
    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                client, addr = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if addr[0] != HOST:
                reset_close(client)
                continue
            client.settimeout(IO_TIMEOUT)
            with self._lock:
                self._seq += 1
                self._counters["accepted"] += 1
                conn = _Conn(self, client, self._seq)
                if self._refuse:
                    conn.refused = True
                elif self._mode == "blackhole":
                    conn.blackholed = True
                    self._counters["blackholed"] += 1
                self._conns.add(conn)
                self._threads = [t for t in self._threads if t.is_alive()] + [conn.thread]
            conn.thread.start()

    def _forget(self, conn):
        with self._lock:
            if conn in self._conns:
                self._conns.discard(conn)
                for direction, t in conn.trackers.items():
                    self._counters[f"records_{direction}"] += t.records
                    self._counters["bad_headers"] += t.bad

    def _count(self, name, n):
        with self._lock:
            self._counters[name] += n

    def _cut_for(self, direction):
        """Consumes the armed cut if it applies to direction; returns the body bytes to keep."""
        with self._lock:
            if self._cut is None or self._cut[0] not in (None, direction):
                return None
            body = self._cut[1]
            self._cut = None
            return body

    def _cut_done(self, direction, ctype, length, body):
        with self._lock:
            self._counters["cuts"] += 1
            self.last_cut = (direction, ctype, length, body)
            self.cut_time = time.monotonic()
        self._cut_event.set()
