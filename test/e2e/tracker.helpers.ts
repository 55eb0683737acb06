import assert from "node:assert/strict";
import { WAIT_MS } from "../helpers/procs.js";
import { trackerCall } from "../helpers/tls.js";

// biome-ignore lint/suspicious/noExplicitAny: raw answers are whatever the tracker sent; tests check them
type Json = any;

export interface Answer {
  status: number;
  body: Json;
}

/**
 * Raw HTTPS (the tracker's key pinned) to a tracker on 127.0.0.1, from any 127/8 source address, with a
 * bounded wait and a bounded answer: what an attacker's script would send.
 */
export function api(port: number) {
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    localAddress?: string,
  ): Promise<Answer> => {
    const r = await trackerCall(port, { method, path, body, token, localAddress, timeoutMs: WAIT_MS });
    return { status: r.status, body: r.body };
  };

  const ok = async (token: string, method: string, path: string, body?: unknown, status = 200) => {
    const r = await call(method, path, body, token);
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
    return r.body as Json;
  };
  const fails = async (token: string, method: string, path: string, body: unknown, code: string) => {
    const r = await call(method, path, body, token);
    assert.equal(r.body?.error?.code, code, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as Json;
  };
  const register = async (userId: string) => {
    const r = await call("POST", "/v1/users", { userId, password: `pw-${userId}` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };
  /** Logs in from `from` (a 127/8 address) announcing `peerAddr`; returns the token. */
  const login = async (userId: string, peerAddr: string, from = "127.0.0.1") => {
    const r = await call(
      "POST",
      "/v1/sessions",
      { userId, password: `pw-${userId}`, peerAddr },
      undefined,
      from,
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.token as string;
  };
  /** `member` asks to join `groupId` and `owner` accepts. */
  const join = async (member: string, owner: string, groupId: string) => {
    await ok(member, "POST", `/v1/groups/${groupId}/requests`, {}, 201);
    const { requests } = await ok(owner, "GET", `/v1/groups/${groupId}/requests`);
    const userId = requests[requests.length - 1].userId;
    await ok(owner, "POST", `/v1/groups/${groupId}/requests/${userId}/accept`, {});
  };
  return { call, ok, fails, register, login, join };
}

export type Api = ReturnType<typeof api>;
