"""redis-py's RedisCluster against a 3-node cluster: discovery, sharded
pub/sub routed by slot (ssubscribe / spublish / get_sharded_message),
classic pub/sub subscribed on one node and published on another.

Usage: python3 redis_py_cluster_check.py PORT0 PORT1 PORT2 (the nodes in
list order). Exits non-zero on any mismatch."""
import sys

from redis.cluster import RedisCluster

ports = [int(p) for p in sys.argv[1:4]]

rc = RedisCluster(host="127.0.0.1", port=ports[0])
nodes = sorted(n.port for n in rc.get_nodes())
assert nodes == sorted(ports), nodes
assert rc.keyslot("foo") == 12182

# Sharded: the client finds the slot's node itself; from any seed node.
for channel in ["foo", "bar", "{user:7}:events"]:
    p = rc.pubsub()
    p.ssubscribe(channel)
    confirm = p.get_sharded_message(timeout=10.0)
    assert confirm["type"] == "ssubscribe", confirm
    assert rc.spublish(channel, "hello") == 1
    msg = p.get_sharded_message(timeout=10.0, ignore_subscribe_messages=True)
    assert msg is not None and msg["type"] == "smessage" and msg["data"] == b"hello", msg
    p.sunsubscribe(channel)
    p.close()

# Classic: subscribed on node 2, published on node 0 (counted there: 0).
sub_node = rc.get_node(host="127.0.0.1", port=ports[2])
ps = rc.pubsub(node=sub_node)
ps.subscribe("news")
confirm = ps.get_message(timeout=10.0)
assert confirm["type"] == "subscribe", confirm
pub = rc.get_redis_connection(rc.get_node(host="127.0.0.1", port=ports[0]))
assert pub.publish("news", "across") == 0
msg = ps.get_message(timeout=10.0, ignore_subscribe_messages=True)
assert msg is not None and msg["data"] == b"across", msg
ps.close()
print("redis-py RedisCluster: ok")
