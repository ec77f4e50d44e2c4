"""redis-py against Herald: pubsub(), patterns, get_message, listen(),
run_in_thread and redis.asyncio, RESP2 and RESP3.

Usage: python3 redis_py_check.py PORT. Exits non-zero on any mismatch."""
import asyncio
import queue
import sys

import redis
import redis.asyncio

port = int(sys.argv[1])


def wait_message(ps, timeout=10.0):
    msg = ps.get_message(ignore_subscribe_messages=True, timeout=timeout)
    assert msg is not None, "no message within the timeout"
    return msg


def check(protocol):
    r = redis.Redis(port=port, protocol=protocol)
    assert r.ping() is True
    ps = r.pubsub()
    ps.subscribe("chat:room:1")
    ps.psubscribe("events:*:payment_*")
    # The confirmations arrive before anything published after them.
    for _ in range(2):
        confirm = ps.get_message(timeout=10.0)
        assert confirm["type"] in ("subscribe", "psubscribe"), confirm
    assert r.pubsub_numsub("chat:room:1") == [(b"chat:room:1", 1)]
    assert r.pubsub_numpat() == 1
    assert b"chat:room:1" in r.pubsub_channels()
    assert r.publish("chat:room:1", "hello") == 1
    msg = wait_message(ps)
    assert msg["type"] == "message" and msg["channel"] == b"chat:room:1" and msg["data"] == b"hello", msg
    assert r.publish("events:orders:payment_failed", b"\x00\xffbinary") == 1
    msg = wait_message(ps)
    assert msg["type"] == "pmessage", msg
    assert msg["pattern"] == b"events:*:payment_*", msg
    assert msg["data"] == b"\x00\xffbinary", msg
    with r.pipeline() as pipe:  # MULTI/EXEC by default
        pipe.publish("chat:room:1", "one").publish("chat:room:1", "two")
        assert pipe.execute() == [1, 1]
    assert wait_message(ps)["data"] == b"one"
    assert wait_message(ps)["data"] == b"two"
    ps.unsubscribe()
    ps.punsubscribe()
    ps.close()
    assert r.publish("chat:room:1", "nobody") == 0
    r.close()


def check_listen_and_thread(protocol):
    r = redis.Redis(port=port, protocol=protocol)
    # listen(): a generator of every event, confirmations first.
    ps = r.pubsub()
    ps.subscribe("notifications:user:7")
    events = ps.listen()
    assert next(events)["type"] == "subscribe"
    r.publish("notifications:user:7", "you have mail")
    msg = next(events)
    assert msg["type"] == "message" and msg["data"] == b"you have mail", msg
    ps.close()
    # run_in_thread(): handlers called from a worker thread.
    got = queue.Queue()
    ps = r.pubsub()
    ps.psubscribe(**{"metrics:*": lambda m: got.put(m)})
    worker = ps.run_in_thread(sleep_time=0.01, daemon=True)
    for _ in range(200):  # until the pattern is confirmed
        if r.pubsub_numpat() == 1:
            break
    assert r.pubsub_numpat() == 1
    for i in range(5):
        r.publish(f"metrics:cpu{i}", str(i))
    for i in range(5):
        m = got.get(timeout=10)
        assert m["type"] == "pmessage" and m["channel"] == f"metrics:cpu{i}".encode() and m["data"] == str(i).encode(), m
    worker.stop()
    worker.join(timeout=10)
    ps.close()
    r.close()


async def check_asyncio(protocol):
    r = redis.asyncio.Redis(port=port, protocol=protocol)
    ps = r.pubsub()
    await ps.subscribe("cache:invalidate")
    await ps.psubscribe("events:order-service:*")
    for _ in range(2):
        confirm = await ps.get_message(timeout=10.0)
        assert confirm["type"] in ("subscribe", "psubscribe"), confirm
    assert await r.publish("cache:invalidate", "user:42") == 1
    assert await r.publish("events:order-service:created", "order 1") == 1
    seen = []
    async for m in ps.listen():
        seen.append((m["type"], m["data"]))
        if len(seen) == 2:
            break
    assert seen == [("message", b"user:42"), ("pmessage", b"order 1")], seen
    await ps.aclose()
    await r.aclose()


for protocol in (2, 3):
    check(protocol)
    check_listen_and_thread(protocol)
    asyncio.run(check_asyncio(protocol))
print("redis-py", redis.__version__, "ok")
