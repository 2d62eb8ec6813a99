#!/usr/bin/env python3
"""A real server with a capacity, for the paper's experiments (experiments/run.py).

An HTTP/1.1 server on PORT whose WORKERS workers each spend SERVICE_MS per request (a sleep:
the work of a front end that waits on a back end), so it saturates at WORKERS / SERVICE_MS
requests per millisecond and, beyond that, queues: latency climbs as it does on an overloaded
server. Only `/work` costs service time (the load asks for it); anything else — the appliance's
L7 health check asks for `/` — is answered at once, as a server's status page is, so an
overloaded server is slow, not dead. Every answer names the server and its software version (`rs1 v2`), so a rolling
upgrade is visible request by request.

SIGUSR1 makes it "fail": from then on it answers 500 (a partial failure that TCP and L4 health
checks do not see). SIGTERM stops it after the requests in hand are answered (a clean restart).
"""
import argparse
import os
import signal
import socket
import sys
import threading
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", default="v1")
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--service-ms", type=float, default=10.0)
    ap.add_argument("--pid-file")
    a = ap.parse_args()

    failing = threading.Event()
    stopping = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: failing.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(1024)
    ls.settimeout(0.2)
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")

    capacity = threading.Semaphore(a.workers)

    def serve(conn: socket.socket) -> None:
        conn.settimeout(5)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                if head.startswith(b"GET /work"):
                    with capacity:
                        time.sleep(a.service_ms / 1000.0)
                if failing.is_set():
                    status, body = "500 Internal Server Error", f"{a.name} {a.version} failing\n"
                else:
                    status, body = "200 OK", f"{a.name} {a.version}\n"
                close = b"connection: close" in head.lower() or stopping.is_set()
                conn.sendall(
                    f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
                    f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n{body}".encode()
                )
                if close:
                    return
        except OSError:
            return
        finally:
            conn.close()

    active = []
    while not stopping.is_set():
        try:
            conn, _ = ls.accept()
        except socket.timeout:
            continue
        t = threading.Thread(target=serve, args=(conn,), daemon=True)
        t.start()
        active.append(t)
        active[:] = [t for t in active if t.is_alive()]
    ls.close()
    # Answer what was accepted, then go.
    for t in active:
        t.join(timeout=5)
    sys.exit(0)


if __name__ == "__main__":
    main()
