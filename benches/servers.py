"""What the curve scripts (load_curves.py, memory_curve.py) share: a
fresh Herald or redis-server on a free port, and the command line."""
import os
import resource
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(server, port):
    """`server` ("herald": the release build, with HERALD_CURVE_ARGS; or
    "redis") listening on `port`, once it accepts connections."""
    if server == "herald":
        extra = os.environ.get("HERALD_CURVE_ARGS", "").split()
        cmd = [os.path.join(ROOT, "target/release/herald"), "--port", str(port), *extra]
    else:
        cmd = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--maxclients", "20000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{server} did not start")


def setup(all_curves):
    """The plots' directory (docs/, or HERALD_CURVE_OUT) and the curves the
    command line names (all of them if none), with room for 10k
    connections and the servers' descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    outdir = os.environ.get("HERALD_CURVE_OUT", os.path.join(ROOT, "docs"))
    os.makedirs(outdir, exist_ok=True)
    curves = sys.argv[1:] or all_curves
    unknown = [c for c in curves if c not in all_curves]
    if unknown:
        sys.exit(f"unknown curve {unknown}: choose from {all_curves}")
    return outdir, curves
