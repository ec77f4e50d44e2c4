"""redis-py against Herald: pubsub(), patterns, get_message, RESP2 and RESP3.

Usage: python3 redis_py_check.py PORT. Exits non-zero on any mismatch."""
import sys
import redis

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


check(2)
check(3)
print("redis-py", redis.__version__, "ok")
