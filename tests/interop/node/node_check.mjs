// ioredis and node-redis against Herald: message and pmessage events,
// counts, unsubscribe; node-redis over RESP2 and RESP3.
// Usage: node node_check.mjs PORT. Exits non-zero on any mismatch.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createRequire } from "node:module";
import Redis from "ioredis";
import { createClient } from "redis";

const port = Number(process.argv[2]);

async function checkIoredis() {
  const sub = new Redis({ port, lazyConnect: true });
  const pub = new Redis({ port, lazyConnect: true });
  await sub.connect();
  await pub.connect();
  assert.equal(await sub.subscribe("chat:room:1", "chat:room:2"), 2);
  assert.equal(await sub.psubscribe("events:*:payment_*"), 3);
  const message = once(sub, "message");
  assert.equal(await pub.publish("chat:room:1", "hello"), 1);
  assert.deepEqual(await message, ["chat:room:1", "hello"]);
  const pmessage = once(sub, "pmessage");
  assert.equal(await pub.publish("events:orders:payment_failed", "order 42"), 1);
  assert.deepEqual(await pmessage, ["events:*:payment_*", "events:orders:payment_failed", "order 42"]);
  // Per-publisher order over a pipeline.
  const got = [];
  const all = new Promise((resolve) => sub.on("message", (_c, m) => got.push(m) === 10 && resolve()));
  const pipe = pub.pipeline();
  for (let i = 0; i < 10; i++) pipe.publish("chat:room:2", String(i));
  await pipe.exec();
  await all;
  assert.deepEqual(got, [...Array(10).keys()].map(String));
  assert.deepEqual(await pub.pubsub("NUMSUB", "chat:room:1"), ["chat:room:1", 1]);
  assert.equal(await pub.pubsub("NUMPAT"), 1);
  // (ioredis waits for replies per named channel; name them.)
  await sub.unsubscribe("chat:room:1", "chat:room:2");
  await sub.punsubscribe("events:*:payment_*");
  assert.equal(await pub.publish("chat:room:1", "nobody"), 0);
  sub.disconnect();
  pub.disconnect();
}

async function checkNodeRedis(RESP) {
  const pub = createClient({ socket: { port }, RESP });
  const sub = pub.duplicate();
  await pub.connect();
  await sub.connect();
  const messages = [];
  let wake;
  const arrived = () => new Promise((r) => (wake = r));
  const push = (m) => { messages.push(m); wake?.(); };
  await sub.subscribe("notifications:user:7", (message, channel) => push(["message", channel, message]));
  await sub.pSubscribe("metrics:*", (message, channel) => push(["pmessage", channel, message]));
  let next = arrived();
  assert.equal(await pub.publish("notifications:user:7", "mail"), 1);
  await next;
  next = arrived();
  assert.equal(await pub.publish("metrics:cpu", "0.5"), 1);
  await next;
  assert.deepEqual(messages, [["message", "notifications:user:7", "mail"], ["pmessage", "metrics:cpu", "0.5"]]);
  assert.deepEqual({ ...(await pub.pubSubNumSub("notifications:user:7")) }, { "notifications:user:7": 1 });
  await sub.unsubscribe("notifications:user:7");
  await sub.pUnsubscribe("metrics:*");
  assert.equal(await pub.publish("metrics:cpu", "gone"), 0);
  await sub.quit();
  await pub.quit();
}

await checkIoredis();
await checkNodeRedis(2);
await checkNodeRedis(3);
const require = createRequire(import.meta.url);
const v = (name) => require(`${name}/package.json`).version;
console.log(`ioredis ${v("ioredis")}, node-redis ${v("redis")} ok`);
