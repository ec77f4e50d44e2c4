"""Chat rooms on `chat:room:{id}`: two members listen, messages are posted.
Usage: python3 chat_room.py [port]"""
import sys

import redis

port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
r = redis.Redis(port=port, decode_responses=True)
members = {name: r.pubsub(ignore_subscribe_messages=True) for name in ("alice", "bob")}
for ps in members.values():
    ps.subscribe("chat:room:42")
    ps.get_message(timeout=5)  # the confirmation
for sender, text in [("alice", "hi"), ("bob", "hello"), ("alice", "bye")]:
    print(f"{sender}: posted to {r.publish('chat:room:42', f'{sender}: {text}')} members")
for name, ps in members.items():
    for _ in range(3):
        print(f"[{name}'s screen] {ps.get_message(timeout=5)['data']}")
    ps.close()
