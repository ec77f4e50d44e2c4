// Cache invalidation across app servers: each drops the key it is told.
import { Redis } from "ioredis";
import { collect, port } from "./common.js";

const names = ["app-1", "app-2"];
const caches = names.map(() => new Map([["user:42", "Ada"], ["user:43", "Grace"]]));
const subs = names.map(() => new Redis({ port }));
const told = subs.map((sub) => collect(sub, "message", 1));
await Promise.all(subs.map((sub) => sub.subscribe("cache:invalidate")));
const pub = new Redis({ port });
console.log(`invalidation sent to ${await pub.publish("cache:invalidate", "user:42")} servers`);
for (const [i, [[, key]]] of (await Promise.all(told)).entries()) {
  caches[i].delete(key);
  console.log(`${names[i]}: dropped ${key}, cache now ${[...caches[i].keys()].join(",")}`);
}
for (const c of [...subs, pub]) c.disconnect();
