"""Per-user notifications plus a broadcast, with a handler thread
(run_in_thread). Usage: python3 notifications.py [port]"""
import queue
import sys

import redis

port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
r = redis.Redis(port=port, decode_responses=True)
inbox = queue.Queue()
ps = r.pubsub(ignore_subscribe_messages=True)
ps.subscribe(**{"notifications:user:7": inbox.put, "notifications:broadcast": inbox.put})
worker = ps.run_in_thread(sleep_time=0.01, daemon=True)
while r.pubsub_numsub("notifications:broadcast")[0][1] == 0:
    pass  # until the worker's subscriptions are in place
r.publish("notifications:user:7", '{"type":"friend_request","from":3}')
r.publish("notifications:user:8", '{"type":"like"}')  # someone else's
r.publish("notifications:broadcast", '{"type":"maintenance","at":"02:00"}')
for _ in range(2):
    m = inbox.get(timeout=5)
    print(f"user 7 <- {m['channel']}: {m['data']}")
worker.stop()
