// ioredis Cluster and node-redis createCluster against a 3-node Herald
// cluster: sharded pub/sub routed by slot (ioredis ssubscribe/spublish,
// node-redis sSubscribe/sPublish), and ioredis' classic subscribe with the
// publish made on another node.
// Usage: node cluster_check.mjs PORT0 PORT1 PORT2. Exits non-zero on any mismatch.
import assert from "node:assert/strict";
import { once } from "node:events";
import Redis from "ioredis";
import { createCluster } from "redis";

const ports = process.argv.slice(2, 5).map(Number);
const seeds = ports.map((port) => ({ host: "127.0.0.1", port }));

async function checkIoredis() {
  // ioredis routes SSUBSCRIBE by slot only with `shardedSubscribers`
  // (without it, it hangs against a Redis cluster too).
  const ssub = new Redis.Cluster(seeds, { lazyConnect: true, shardedSubscribers: true });
  const sub = new Redis.Cluster(seeds, { lazyConnect: true });
  const pub = new Redis.Cluster(seeds, { lazyConnect: true });
  await Promise.all([ssub.connect(), sub.connect(), pub.connect()]);
  for (const channel of ["foo", "bar", "{user:7}:events"]) {
    assert.equal(await ssub.ssubscribe(channel), 1);
    const smessage = once(ssub, "smessage");
    assert.equal(await pub.spublish(channel, "hello"), 1);
    const [ch, message] = await smessage;
    assert.deepEqual([ch, message], [channel, "hello"]);
    await ssub.sunsubscribe(channel);
  }
  ssub.disconnect();
  // Classic: ioredis subscribes on one node of its choosing; a publish
  // on every node in turn reaches it.
  assert.equal(await sub.subscribe("news"), 1);
  for (const port of ports) {
    const node = new Redis({ host: "127.0.0.1", port });
    const message = once(sub, "message");
    await node.publish("news", `from ${port}`);
    assert.deepEqual(await message, ["news", `from ${port}`]);
    node.disconnect();
  }
  sub.disconnect();
  pub.disconnect();
  console.log("ioredis Cluster ok");
}

async function checkNodeRedis() {
  const cluster = createCluster({ rootNodes: ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })) });
  cluster.on("error", () => {});
  await cluster.connect();
  for (const channel of ["foo", "bar"]) {
    let resolve;
    const got = new Promise((r) => (resolve = r));
    // Resolves once the node serving the slot has confirmed.
    await cluster.sSubscribe(channel, (message, ch) => resolve([ch, message]));
    assert.equal(await cluster.sPublish(channel, "hi"), 1);
    assert.deepEqual(await got, [channel, "hi"]);
    await cluster.sUnsubscribe(channel);
  }
  await cluster.close();
  console.log("node-redis createCluster ok");
}

await checkIoredis();
await checkNodeRedis();
