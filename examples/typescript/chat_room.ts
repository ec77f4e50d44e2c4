// Chat rooms on `chat:room:{id}`: two members listen, three posts.
import { Redis } from "ioredis";
import { collect, port } from "./common.js";

const members = ["alice", "bob"];
const subs = members.map(() => new Redis({ port }));
const screens = subs.map((sub) => collect(sub, "message", 3));
await Promise.all(subs.map((sub) => sub.subscribe("chat:room:42")));
const pub = new Redis({ port });
for (const [sender, text] of [["alice", "hi"], ["bob", "hello"], ["alice", "bye"]]) {
  console.log(`${sender}: posted to ${await pub.publish("chat:room:42", `${sender}: ${text}`)} members`);
}
for (const [i, screen] of (await Promise.all(screens)).entries()) {
  for (const [, line] of screen) console.log(`[${members[i]}'s screen] ${line}`);
}
for (const c of [...subs, pub]) c.disconnect();
