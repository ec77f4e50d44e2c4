#!/usr/bin/env python3
"""Memory against load, Herald and redis-server in the same run, as two
plots:

- per channel subscription against the number of subscriptions on one
  connection (docs/memory-per-subscription.png): each point a fresh
  server, N channels subscribed on one connection (confirmations read as
  they come), then MEMORY PURGE on the server (both answer once it is
  done), then RSS growth / N;
- per pattern subscription against the number of patterns on one
  connection (docs/memory-per-pattern.png), measured as the first;
- per idle subscribed connection against the number of connections
  (docs/memory-per-connection.png): each point a fresh server, N
  connections each subscribed to a channel of its own, RSS growth / N.

    cargo build --release && python3 benches/memory_curve.py [CURVE...]

CURVE is subscriptions, patterns or connections (default: all three);
plots go to docs/ (HERALD_CURVE_OUT elsewhere).

Needs matplotlib (`pip install matplotlib`) and redis-server on the PATH.
The figures are printed too, one line per point.
"""
import os
import socket
import threading

from servers import free_port, setup, start

SIZES = [10_000, 30_000, 100_000, 300_000, 1_000_000]
CONNECTIONS = [100, 300, 1_000, 3_000, 10_000]
PATTERNS = [1_000, 10_000, 100_000]



def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")



def per_subscription(server, n, verb="SUBSCRIBE", name="subscription:{}"):
    port = free_port()
    proc = start(server, port)
    try:
        conn = socket.create_connection(("127.0.0.1", port))
        base = rss(proc.pid)

        def send():
            for i in range(0, n, 1000):
                names = " ".join(name.format(j) for j in range(i, min(i + 1000, n)))
                conn.sendall(f"{verb} {names}\r\n".encode())

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


def per_connection(server, n):
    port = free_port()
    proc = start(server, port)
    try:
        base = rss(proc.pid)
        conns = []
        for i in range(n):
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(f"SUBSCRIBE idle:{i}\r\n".encode())
            conns.append(c)
        for c in conns:
            reply = b""
            while reply.count(b"\r\n") < 6:
                chunk = c.recv(4096)
                if not chunk:
                    raise RuntimeError(f"{server} closed connection {len(reply)}")
                reply += chunk
        grown = (rss(proc.pid) - base) / n
        for c in conns:
            c.close()
        return grown
    finally:
        proc.kill()
        proc.wait()


def plot(sizes, figures, target, xlabel, ylabel, title, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for server, label in [("herald", "Herald"), ("redis", "redis-server 7.0.15")]:
        ax.plot(sizes, figures[server], marker="o", label=label)
    ax.axhline(target[0], color="grey", linestyle="--", linewidth=1, label=target[1])
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


def measure(sizes, one, what):
    figures = {"herald": [], "redis": []}
    for n in sizes:
        for server in figures:
            b = one(server, n)
            figures[server].append(b)
            print(f"{server} {n} {what}: {b:.0f} B each")
    return figures


def main():
    outdir, curves = setup(["subscriptions", "patterns", "connections"])
    if "subscriptions" in curves:
        subscriptions(outdir)
    if "patterns" in curves:
        patterns(outdir)
    if "connections" in curves:
        connections(outdir)


def subscriptions(outdir):
    subs = measure(SIZES, per_subscription, "subscriptions")
    plot(
        SIZES,
        subs,
        (200, "issue 15's target (200 B)"),
        "channel subscriptions on one connection",
        "RSS growth per subscription (bytes)",
        "Memory per channel subscription, after MEMORY PURGE",
        os.path.join(outdir, "memory-per-subscription.png"),
    )


def patterns(outdir):
    patterns = measure(
        PATTERNS, lambda server, n: per_subscription(server, n, "PSUBSCRIBE", "user:{}:*"), "pattern subscriptions"
    )
    plot(
        PATTERNS,
        patterns,
        (patterns["redis"][-1], "Redis at 100k (issue 15: Herald at most this)"),
        "pattern subscriptions on one connection",
        "RSS growth per pattern (bytes)",
        "Memory per pattern subscription, after MEMORY PURGE",
        os.path.join(outdir, "memory-per-pattern.png"),
    )


def connections(outdir):
    conns = measure(CONNECTIONS, per_connection, "idle connections")
    plot(
        CONNECTIONS,
        conns,
        (6000, "issue 15's target (6 KB)"),
        "idle subscribed connections",
        "RSS growth per connection (bytes)",
        "Memory per idle subscribed connection",
        os.path.join(outdir, "memory-per-connection.png"),
    )


if __name__ == "__main__":
    main()
