#!/usr/bin/env python3
"""Memory per channel subscription against the number of subscriptions on
one connection, Herald and redis-server in the same run, as a plot.

    cargo build --release && python3 benches/memory_curve.py [OUT.png]

Each point is a fresh server: N channels subscribed on one connection
(confirmations read as they come), then MEMORY PURGE on the server (both
answer once it is done), then RSS growth / N. Needs matplotlib
(`pip install matplotlib`) and redis-server on the PATH. The figures are
printed too, one line per point.
"""
import os
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [10_000, 30_000, 100_000, 300_000, 1_000_000]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def start(server, port):
    if server == "herald":
        cmd = [os.path.join(ROOT, "target/release/herald"), "--port", str(port)]
    else:
        cmd = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{server} did not start")


def per_subscription(server, n):
    port = free_port()
    proc = start(server, port)
    try:
        conn = socket.create_connection(("127.0.0.1", port))
        base = rss(proc.pid)

        def send():
            for i in range(0, n, 1000):
                names = " ".join(f"subscription:{j}" for j in range(i, min(i + 1000, n)))
                conn.sendall(f"SUBSCRIBE {names}\r\n".encode())

        writer = threading.Thread(target=send)
        writer.start()
        tail, last = b"", f":{n}\r\n".encode()
        while not tail.endswith(last):
            chunk = conn.recv(1 << 16)
            if not chunk:
                raise RuntimeError(f"{server} closed the subscribing connection")
            tail = (tail + chunk)[-64:]
        writer.join()
        admin = socket.create_connection(("127.0.0.1", port))
        admin.sendall(b"MEMORY PURGE\r\n")
        admin.recv(100)
        return (rss(proc.pid) - base) / n
    finally:
        proc.kill()
        proc.wait()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs/memory-per-subscription.png")
    figures = {"herald": [], "redis": []}
    for n in SIZES:
        for server in figures:
            b = per_subscription(server, n)
            figures[server].append(b)
            print(f"{server} {n} subscriptions: {b:.0f} B each")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for server, label in [("herald", "Herald"), ("redis", "redis-server 7.0.15")]:
        ax.plot(SIZES, figures[server], marker="o", label=label)
    ax.axhline(200, color="grey", linestyle="--", linewidth=1, label="issue 15's target (200 B)")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("channel subscriptions on one connection")
    ax.set_ylabel("RSS growth per subscription (bytes)")
    ax.set_title("Memory per channel subscription, after MEMORY PURGE")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
