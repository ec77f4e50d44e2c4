#!/usr/bin/env python3
"""How cost grows under load, Herald against redis-server in the same run,
as three plots (issue 15's curves; memory_curve.py draws the memory ones):

- deliveries/s against subscribers of one channel, one publisher,
  pipeline 8 (docs/curve-fan-out.png);
- publish rate against idle patterns (never matching, held on one extra
  connection), one publisher, one subscriber, pipeline 8
  (docs/curve-idle-patterns.png);
- p50 and p99 publish-to-delivery latency against publishers, one
  subscriber, no pipelining (docs/curve-latency.png).

    cargo build --release -p herald -p herald-bench && python3 benches/load_curves.py [CURVE...]

CURVE is fan-out, idle-patterns or latency (default: all three); plots go
to docs/ (HERALD_CURVE_OUT elsewhere).

Each point is a fresh server and a `herald-bench` run of SECONDS seconds
(default 2; set HERALD_CURVE_SECONDS); the servers alternate which goes
first. Herald runs with its default threads (HERALD_CURVE_ARGS adds flags).
Every run must report zero duplicates, reorders and losses, or the script
stops. Needs matplotlib and redis-server on the PATH.

redis-server is not run past 100k idle patterns: Redis 7.0 keeps a
client's patterns in a list, so each PSUBSCRIBE is linear in those the
connection holds, and a million on one connection takes hours (the 100k
point took seconds; a 1M run was stopped after 5 minutes of PSUBSCRIBEs).
"""
import os
import re
import subprocess

from servers import ROOT, free_port, setup, start

BENCH = os.path.join(ROOT, "target/release/herald-bench")
SECONDS = os.environ.get("HERALD_CURVE_SECONDS", "2")
SUBSCRIBERS = [1, 10, 100, 1000, 5000]
IDLE_PATTERNS = [0, 1000, 10_000, 100_000, 1_000_000]
REDIS_MAX_IDLE_PATTERNS = 100_000
PUBLISHERS = [1, 2, 4, 8, 16]


def run(server, args):
    """One herald-bench run against a fresh `server`: its figures."""
    port = free_port()
    proc = start(server, port)
    try:
        out = subprocess.run(
            [BENCH, "--addr", f"127.0.0.1:{port}", "--seconds", SECONDS, *args],
            capture_output=True,
            text=True,
            timeout=600,
        )
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
        figures = dict(re.findall(r"([\w/]+)=([0-9.]+)", line))
        if not figures or any(figures.get(k) != "0" for k in ("duplicates", "reorders", "lost")):
            raise RuntimeError(f"{server} {args}: {line}")
        return {k: float(v) for k, v in figures.items()}
    finally:
        proc.kill()
        proc.wait()


def sweep(points, args_of, pick, what, redis_max=None):
    """Each server's (points, figures)."""
    figures = {"herald": ([], []), "redis": ([], [])}
    for i, n in enumerate(points):
        order = ["herald", "redis"] if i % 2 == 0 else ["redis", "herald"]
        for server in order:
            if server == "redis" and redis_max is not None and n > redis_max:
                continue
            f = run(server, args_of(n))
            figures[server][0].append(n)
            figures[server][1].append(pick(f))
            print(f"{server} {what}={n}: {pick(f)}", flush=True)
    return figures


def plot(series, xlabel, ylabel, title, out, symlog=False):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, points, values, style in series:
        ax.plot(points, values, style, marker="o", label=label)
    if symlog:
        ax.set_xscale("symlog", linthresh=1000)
    else:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot: {out}", flush=True)


def main():
    outdir, curves = setup(["fan-out", "idle-patterns", "latency"])
    args = os.environ.get("HERALD_CURVE_ARGS", "").strip()
    names = {"herald": f"Herald {args}".strip(), "redis": "redis-server 7.0.15"}

    if "fan-out" in curves:
        fan_out(outdir, names)
    if "idle-patterns" in curves:
        idle_patterns(outdir, names)
    if "latency" in curves:
        latency(outdir, names)


def fan_out(outdir, names):
    fan = sweep(SUBSCRIBERS, lambda n: ["--subscribers", str(n), "--pipeline", "8"], lambda f: f["deliveries/s"], "subscribers")
    plot(
        [(names[s], *fan[s], "-") for s in fan],
        "subscribers of one channel (one publisher, pipeline 8)",
        "deliveries per second",
        "Fan-out: deliveries/s against subscribers",
        os.path.join(outdir, "curve-fan-out.png"),
    )


def idle_patterns(outdir, names):
    idle = sweep(
        IDLE_PATTERNS,
        lambda n: ["--idle-patterns", str(n), "--pipeline", "8"],
        lambda f: f["published/s"],
        "idle_patterns",
        redis_max=REDIS_MAX_IDLE_PATTERNS,
    )
    plot(
        [(names[s], *idle[s], "-") for s in idle],
        "idle patterns held (never matching)",
        "publishes per second",
        "Publish rate against idle patterns",
        os.path.join(outdir, "curve-idle-patterns.png"),
        symlog=True,
    )


def latency(outdir, names):
    lat = {"herald": [], "redis": []}
    for i, n in enumerate(PUBLISHERS):
        order = ["herald", "redis"] if i % 2 == 0 else ["redis", "herald"]
        for server in order:
            f = run(server, ["--publishers", str(n)])
            lat[server].append((f["p50_us"], f["p99_us"]))
            print(f"{server} publishers={n}: p50 {f['p50_us']} us, p99 {f['p99_us']} us", flush=True)
    plot(
        [(f"{names[s]} p50", PUBLISHERS, [x[0] for x in lat[s]], "-") for s in lat]
        + [(f"{names[s]} p99", PUBLISHERS, [x[1] for x in lat[s]], "--") for s in lat],
        "publishers (one subscriber, no pipelining)",
        "publish-to-delivery latency (µs)",
        "Latency against publishers",
        os.path.join(outdir, "curve-latency.png"),
    )


if __name__ == "__main__":
    main()
