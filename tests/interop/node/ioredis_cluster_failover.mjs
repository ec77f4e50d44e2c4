// ioredis Cluster's sharded subscriber (`shardedSubscribers`) through a
// failover: it subscribes to a channel of the node with pid VICTIM_PID
// (listening on PORT2), the node is killed (SIGKILL), and the subscriber
// hears, by itself, a publish made after the cluster gave the slot to a
// survivor. Every publish has its own number: none may arrive twice.
// Usage: node ioredis_cluster_failover.mjs PORT0 PORT1 PORT2 VICTIM_PID
import assert from "node:assert/strict";
import Redis from "ioredis";

const ports = process.argv.slice(2, 5).map(Number);
const victim = Number(process.argv[5]);
const seeds = ports.map((port) => ({ host: "127.0.0.1", port }));
const ssub = new Redis.Cluster(seeds, { lazyConnect: true, shardedSubscribers: true });
const pub = new Redis.Cluster(seeds, { lazyConnect: true });
// Connection errors while the node is down are expected.
ssub.on("error", () => {});
pub.on("error", () => {});
await Promise.all([ssub.connect(), pub.connect()]);
const slots = await pub.cluster("SLOTS");
let channel;
for (let i = 0; ; i++) {
  const slot = await pub.cluster("KEYSLOT", `ch${i}`);
  if (slots.some(([a, b, [, port]]) => port === ports[2] && slot >= a && slot <= b)) {
    channel = `ch${i}`;
    break;
  }
}
await ssub.ssubscribe(channel);
const heard = [];
ssub.on("smessage", (_, message) => heard.push(message));
process.kill(victim, "SIGKILL");
const killed = Date.now();
let sent = 0;
while (heard.length === 0 && Date.now() - killed < 60000) {
  try {
    await pub.spublish(channel, `after ${++sent}`);
  } catch {}
  // The application's publishing pace, not a synchronisation.
  await new Promise((r) => setTimeout(r, 100));
}
assert.ok(heard.length > 0, "never heard a publish after the failover");
const took = (Date.now() - killed) / 1000;
await new Promise((r) => setTimeout(r, 300));
assert.equal(new Set(heard).size, heard.length, `${heard}`);
ssub.disconnect();
pub.disconnect();
console.log(`ioredis Cluster: failover heard after ${took.toFixed(2)} s`);
