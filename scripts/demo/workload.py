#!/usr/bin/env python3
"""The demo's multi-tier workload: one role per process, each run in its own
network namespace by demo.py. Standard library only.

  frontend LISTEN API LEGACY       HTTP on LISTEN; /, /item/<id>, /checkout call
                                   the api; every 2 s it also dials LEGACY, a
                                   decommissioned address (refused: failed
                                   connects and resets in the network panels)
  api LISTEN REDIS STORAGE DELAY_FILE
                                   HTTP on LISTEN; reads/writes redis per
                                   request; POST /api/orders fails 1 in 8 (500);
                                   every request first sleeps the seconds written
                                   in DELAY_FILE (the "backend becomes slow"
                                   knob); every 3 s uploads 512 KiB to STORAGE
  storage LISTEN                   TCP sink for the api's uploads (demo.py
                                   drops a few percent of them: retransmits);
                                   every 10th connection it stops reading for
                                   2 s (zero windows)
  loadgen FRONTEND RPS             requests to the frontend at about RPS/s

Addresses are HOST:PORT.
"""
import http.client
import http.server
import itertools
import os
import random
import socket
import sys
import threading
import time


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    route = None  # set per role: (handler, method, path) -> (status, body)

    def log_message(self, *args):
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        try:
            status, body = type(self).route(self.command, self.path)
        except Exception as e:  # a failing dependency is a 502, as a proxy says
            status, body = 502, ("upstream error: %s\n" % e).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _serve
    do_POST = _serve


def serve_http(listen, route):
    cls = type("RoleHandler", (Handler,), {"route": staticmethod(route)})
    server = http.server.ThreadingHTTPServer(hostport(listen), cls)
    server.daemon_threads = True
    print("listening", flush=True)
    server.serve_forever()


def call(addr, method, path, timeout=10):
    host, port = hostport(addr)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=b"{}" if method == "POST" else None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def every(seconds, fn):
    def loop():
        while True:
            try:
                fn()
            except OSError:
                pass
            time.sleep(seconds)
    threading.Thread(target=loop, daemon=True).start()


def frontend(listen, api, legacy):
    def route(method, path):
        if path == "/":
            return call(api, "GET", "/api/items")
        if path.startswith("/item/"):
            return call(api, "GET", "/api/items/" + path[len("/item/"):])
        if path == "/checkout":
            return call(api, "POST", "/api/orders")
        return 404, b"not found\n"

    def dial_legacy():
        socket.create_connection(hostport(legacy), timeout=2).close()
    every(2, dial_legacy)
    serve_http(listen, route)


class Redis:
    """One RESP connection per thread (commands are tiny and synchronous)."""

    def __init__(self, addr):
        self.addr = hostport(addr)
        self.local = threading.local()

    def command(self, *args):
        sock = getattr(self.local, "sock", None)
        if sock is None:
            sock = self.local.sock = socket.create_connection(self.addr, timeout=5)
            self.local.buf = sock.makefile("rb")
        out = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (str(x).encode() for x in args))
        try:
            sock.sendall(out)
            line = self.local.buf.readline()
            if line.startswith(b"$") and line[1:2] != b"-":
                self.local.buf.read(int(line[1:]) + 2)
            return line
        except OSError:
            self.local.sock = None
            raise


def api(listen, redis_addr, storage, delay_file):
    redis = Redis(redis_addr)
    orders = itertools.count()

    def delay():
        try:
            with open(delay_file) as f:
                return float(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0.0

    def route(method, path):
        time.sleep(delay())
        if path == "/api/items":
            redis.command("INCR", "list_views")
            return 200, b"items\n"
        if path.startswith("/api/items/"):
            redis.command("GET", "item:" + path.rsplit("/", 1)[1])
            return 200, b"item\n"
        if path == "/api/orders" and method == "POST":
            n = next(orders)
            redis.command("INCR", "orders")
            return (500, b"payment declined\n") if n % 8 == 7 else (201, b"ordered\n")
        return 404, b"not found\n"

    def upload():
        with socket.create_connection(hostport(storage), timeout=5) as s:
            s.sendall(b"x" * (512 * 1024))
    every(3, upload)
    serve_http(listen, route)


def storage(listen):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(hostport(listen))
    ls.listen(64)
    print("listening", flush=True)
    for n in itertools.count():
        conn, _ = ls.accept()

        def drain(conn=conn, stall=(n % 10 == 9)):
            with conn:
                if stall:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    time.sleep(2)
                while conn.recv(1 << 16):
                    pass
        threading.Thread(target=drain, daemon=True).start()


def loadgen(frontend_addr, rps):
    paths = ["/", "/", "/item/%d", "/item/%d", "/checkout"]
    period = 1.0 / float(rps)

    def one():
        path = random.choice(paths)
        if "%d" in path:
            path %= random.randint(1, 500)
        try:
            call(frontend_addr, "GET" if path != "/checkout" else "POST", path, timeout=30)
        except OSError:
            pass
    print("running", flush=True)
    while True:
        threading.Thread(target=one, daemon=True).start()
        time.sleep(period)


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    {"frontend": frontend, "api": api, "storage": storage, "loadgen": loadgen}[role](*args)
