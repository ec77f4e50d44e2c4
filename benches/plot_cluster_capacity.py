#!/usr/bin/env python3
"""Plots the cluster capacity sweep (docs/curve-cluster-capacity.png):
deliveries/s of the cross-node fan-out against the publisher's pipeline
depth, Herald's cluster and Redis Cluster's, from the CSV the bench writes.

    HERALD_BENCH_CSV=/tmp/capacity.csv cargo bench --bench cluster -- capacity
    HERALD_BENCH_REDIS_ARGS="--client-output-buffer-limit pubsub 0 0 0" \
        HERALD_BENCH_CSV=/tmp/unlimited.csv cargo bench --bench cluster -- capacity
    python3 benches/plot_cluster_capacity.py /tmp/capacity.csv [--unlimited /tmp/unlimited.csv] [--out PNG]

With --unlimited, Redis Cluster's curve from that run (its subscribers'
output buffer limit off) is drawn too, dashed.

A depth where every round held (everything delivered, once, in order, no
subscriber dropped) is a point at its mean rate; a depth where a round did
not hold is a cross on the axis. Needs matplotlib.
"""
import argparse
import csv
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker


def read(path):
    runs = defaultdict(list)  # (cluster, depth) -> [(rate, held)]
    with open(path) as f:
        for r in csv.DictReader(f):
            runs[(r["cluster"], int(r["pipeline"]))].append((float(r["deliveries_per_sec"]), r["held"] == "true"))
    return runs


def curve(ax, runs, cluster, label, style, color):
    depths = sorted(d for (c, d) in runs if c == cluster)
    held = [(d, sum(x for x, _ in runs[(cluster, d)]) / len(runs[(cluster, d)]))
            for d in depths if all(h for _, h in runs[(cluster, d)])]
    failed = [d for d in depths if not all(h for _, h in runs[(cluster, d)])]
    ax.plot([d for d, _ in held], [y / 1e6 for _, y in held], style, color=color, label=label)
    if failed:
        ax.plot(failed, [0] * len(failed), "x", color=color, markersize=9, clip_on=False,
                label=f"{label}: lost deliveries (subscribers dropped)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--unlimited")
    ap.add_argument("--out", default="docs/curve-cluster-capacity.png")
    args = ap.parse_args()
    runs = read(args.csv)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    curve(ax, runs, "herald", "Herald cluster", "o-", "tab:blue")
    curve(ax, runs, "redis", "Redis 7.0.15 Cluster", "o-", "tab:red")
    if args.unlimited:
        curve(ax, read(args.unlimited), "redis", "Redis Cluster, pubsub output limit off", "s--", "tab:orange")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({d for (_, d) in runs}))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("publisher pipeline depth (offered load)")
    ax.set_ylabel("deliveries/s (millions)")
    ax.set_title("PUBLISH on node 1, 10 subscribers on node 3 (3 nodes, 2 cores)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
