// Per-user notifications plus a broadcast channel.
import { Redis } from "ioredis";
import { collect, port } from "./common.js";

const user7 = new Redis({ port });
const inbox = collect(user7, "message", 2);
await user7.subscribe("notifications:user:7", "notifications:broadcast");
const pub = new Redis({ port });
await pub.publish("notifications:user:7", JSON.stringify({ type: "friend_request", from: 3 }));
await pub.publish("notifications:user:8", JSON.stringify({ type: "like" })); // someone else's
const everyone = await pub.publish("notifications:broadcast", JSON.stringify({ type: "maintenance" }));
console.log(`broadcast reached ${everyone} subscriber(s)`);
for (const [channel, payload] of await inbox) console.log(`user 7 <- ${channel}: ${payload}`);
user7.disconnect();
pub.disconnect();
