/**
 * Loaded into a tracker process with `node --import` by the lab's NAT tests: appends
 * every byte the relay receives from a member's leg to the file RELAY_TAP, so a test
 * can check that the relay host handles nothing but the members' own TLS.
 */
import { appendFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import { Relay } from "../../src/tracker/relay.js";

const tap = process.env.RELAY_TAP;
if (tap) {
  const join = Relay.prototype.join;
  Relay.prototype.join = function (this: Relay, id: string, userId: string, socket: Duplex, head: Buffer) {
    if (head.length > 0) appendFileSync(tap, head);
    socket.on("data", (chunk: Buffer) => appendFileSync(tap, chunk));
    return join.call(this, id, userId, socket, head);
  };
}
