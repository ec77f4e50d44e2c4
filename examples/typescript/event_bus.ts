// A microservice event bus on `events:{service}:{type}` with patterns.
import { Redis } from "ioredis";
import { collect, port } from "./common.js";

const listeners: [string, string][] = [["payments", "events:*:payment_*"], ["audit", "events:order-service:*"]];
const subs = listeners.map(() => new Redis({ port }));
const heard = subs.map((sub) => collect(sub, "pmessage", 2));
await Promise.all(subs.map((sub, i) => sub.psubscribe(listeners[i][1])));
const pub = new Redis({ port });
for (const channel of ["events:order-service:created", "events:order-service:payment_failed", "events:billing:payment_ok"]) {
  console.log(`${channel} -> ${await pub.publish(channel, "order 42")} subscription(s)`);
}
for (const [i, events] of (await Promise.all(heard)).entries()) {
  for (const [pattern, channel, data] of events) console.log(`[${listeners[i][0]} via ${pattern}] ${channel}: ${data}`);
}
for (const c of [...subs, pub]) c.disconnect();
