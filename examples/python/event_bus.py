"""A microservice event bus on `events:{service}:{type}` (asyncio): the
payments service listens to every payment event, audit to order-service.
Usage: python3 event_bus.py [port]"""
import asyncio
import sys

import redis.asyncio as redis

port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379


async def main():
    r = redis.Redis(port=port, decode_responses=True)
    payments, audit = r.pubsub(), r.pubsub()
    await payments.psubscribe("events:*:payment_*")
    await audit.psubscribe("events:order-service:*")
    for ps in (payments, audit):
        await ps.get_message(timeout=5)
    for channel in ["events:order-service:created", "events:order-service:payment_failed", "events:billing:payment_ok"]:
        print(f"{channel} -> {await r.publish(channel, 'order 42')} subscription(s)")
    for name, ps, n in [("payments", payments, 2), ("audit", audit, 2)]:
        for _ in range(n):
            m = await ps.get_message(ignore_subscribe_messages=True, timeout=5)
            print(f"[{name} via {m['pattern']}] {m['channel']}: {m['data']}")
        await ps.aclose()
    await r.aclose()


asyncio.run(main())
