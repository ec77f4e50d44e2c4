"""redis-py's RedisCluster sharded subscriber through a failover: it
subscribes to a channel of the node with pid VICTIM_PID (listening on
PORT2), the node is killed (SIGKILL), and the subscriber, reading on
through the connection errors as an application does, hears a publish
made after the cluster gave the slot to a survivor. Every publish has its
own number: none may arrive twice.

Usage: python3 redis_py_cluster_failover.py PORT0 PORT1 PORT2 VICTIM_PID
Prints the seconds from the kill to the first message heard."""
import os
import signal
import sys
import time

from redis.cluster import RedisCluster
from redis.exceptions import ClusterDownError, RedisError

ports = [int(p) for p in sys.argv[1:4]]
victim = int(sys.argv[4])
rc = RedisCluster(host="127.0.0.1", port=ports[0])
channel = next(f"ch{i}" for i in range(100000) if rc.get_node_from_key(f"ch{i}").port == ports[2])
p = rc.pubsub()
p.ssubscribe(channel)
assert p.get_sharded_message(timeout=10.0)["type"] == "ssubscribe"
os.kill(victim, signal.SIGKILL)
killed = time.time()
heard, sent = [], 0
errors = {}  # what went wrong on the way, counted: printed if it never recovers
while not heard and time.time() - killed < 60:
    try:
        m = p.get_sharded_message(timeout=0.1, ignore_subscribe_messages=True)
        if m and m["type"] == "smessage":
            heard.append(m["data"])
    except ClusterDownError as e:
        # The client re-subscribed before the survivors had taken the slot
        # over (under load, the lease runs out later than the client's
        # reconnect): redis-py reports the refusal and does not try again,
        # so an application subscribes again, as it would against Redis.
        errors[f"read: {type(e).__name__}: {e}"] = errors.get(f"read: {type(e).__name__}: {e}", 0) + 1
        time.sleep(0.1)  # the application's retry pace, not a synchronisation
        try:
            p.ssubscribe(channel)
        except RedisError as e:
            errors[f"resubscribe: {type(e).__name__}: {e}"] = errors.get(f"resubscribe: {type(e).__name__}: {e}", 0) + 1
    except RedisError as e:
        errors[f"read: {type(e).__name__}: {e}"] = errors.get(f"read: {type(e).__name__}: {e}", 0) + 1
        time.sleep(0.1)  # the application's retry pace, not a synchronisation
    try:
        sent += 1
        rc.spublish(channel, f"after {sent}")
    except RedisError as e:
        errors[f"publish: {type(e).__name__}: {e}"] = errors.get(f"publish: {type(e).__name__}: {e}", 0) + 1
owner = rc.get_node_from_key(channel)
assert heard, (
    f"never heard a publish after the failover; {sent} sent; {channel} owned by {owner.name} now; "
    f"pubsub's nodes {sorted(p.node_pubsub_mapping)}; errors {errors}"
)
took = time.time() - killed
# What else arrived: each number at most once.
deadline = time.time() + 0.3
while time.time() < deadline:
    m = p.get_sharded_message(timeout=0.05, ignore_subscribe_messages=True)
    if m and m["type"] == "smessage":
        heard.append(m["data"])
assert len(heard) == len(set(heard)), heard
print(f"redis-py RedisCluster: failover heard after {took:.2f} s")
