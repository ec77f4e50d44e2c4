// Shared by the examples: the server's port, and waiting for events.
import type { Redis } from "ioredis";

export const port = Number(process.argv[2] ?? 6379);

/** Resolves with the arguments of the next `n` `event`s on `client`
 * (start it before publishing). */
export function collect(client: Redis, event: "message" | "pmessage", n: number): Promise<string[][]> {
  const got: string[][] = [];
  return new Promise((resolve) => {
    client.on(event, (...args: string[]) => {
      got.push(args);
      if (got.length === n) resolve(got);
    });
  });
}
