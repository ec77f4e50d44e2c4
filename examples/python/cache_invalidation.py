"""Cache invalidation across app servers: each keeps a local cache and
drops a key when `cache:invalidate` names it. Usage: python3 cache_invalidation.py [port]"""
import sys

import redis

port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
r = redis.Redis(port=port, decode_responses=True)
servers = {}
for name in ("app-1", "app-2"):
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.subscribe("cache:invalidate")
    ps.get_message(timeout=5)
    servers[name] = (ps, {"user:42": "Ada", "user:43": "Grace"})
print(f"invalidation sent to {r.publish('cache:invalidate', 'user:42')} servers")
for name, (ps, cache) in servers.items():
    key = ps.get_message(timeout=5)["data"]
    cache.pop(key, None)
    print(f"{name}: dropped {key}, cache now {sorted(cache)}")
    ps.close()
