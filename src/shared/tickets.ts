import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { ID_PATTERN } from "./constants.js";

/**
 * A download ticket: the tracker's word that `user` may fetch the file with id `f`
 * (fileIdOf) in `group` until `exp`, over a connection whose other end proves key `k`. Format: base64url(JSON claims) "." base64url(Ed25519 signature).
 * Peers check it with the trackers' public key; they never call a tracker to do so.
 */
export interface TicketClaims {
  /** downloading user */
  u: string;
  /** group id */
  g: string;
  /** the file id (fileIdOf, 40 hex): the handshake's fileId */
  f: string;
  /** the downloader's peer key (peerKey.ts): a sharer serves only a connection that proves it */
  k: string;
  /** expiry, ms since the epoch */
  exp: number;
}

export function signTicket(privateKeyPem: string | KeyObject, claims: TicketClaims): string {
  const key = typeof privateKeyPem === "string" ? createPrivateKey(privateKeyPem) : privateKeyPem;
  const body = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const sig = sign(null, Buffer.from(body), key).toString("base64url");
  return `${body}.${sig}`;
}

export type TicketCheck = { ok: true; claims: TicketClaims } | { ok: false; reason: string };

/** Never throws: a forged or garbled ticket is an answer, not an exception. */
export function verifyTicket(publicKey: KeyObject, ticket: string, now: number): TicketCheck {
  const dot = ticket.indexOf(".");
  if (dot <= 0) return { ok: false, reason: "malformed ticket" };
  const body = ticket.slice(0, dot);
  let good = false;
  try {
    good = verify(null, Buffer.from(body), publicKey, Buffer.from(ticket.slice(dot + 1), "base64url"));
  } catch {
    good = false;
  }
  if (!good) return { ok: false, reason: "bad ticket signature" };
  let claims: TicketClaims;
  try {
    claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    return { ok: false, reason: "malformed ticket" };
  }
  if (
    typeof claims !== "object" ||
    claims === null ||
    typeof claims.u !== "string" ||
    typeof claims.g !== "string" ||
    typeof claims.f !== "string" ||
    typeof claims.k !== "string" ||
    typeof claims.exp !== "number"
  ) {
    return { ok: false, reason: "malformed ticket" };
  }
  // a signed ticket is still checked: every claim names something, or the ticket names nothing
  if (!ID_PATTERN.test(claims.u)) return { ok: false, reason: "ticket's user is not a valid id" };
  if (!ID_PATTERN.test(claims.g)) return { ok: false, reason: "ticket's group is not a valid id" };
  if (!/^[0-9a-f]{40}$/.test(claims.f)) return { ok: false, reason: "ticket's file id is malformed" };
  if (!Number.isFinite(claims.exp)) return { ok: false, reason: "malformed ticket" };
  if (claims.exp < now) return { ok: false, reason: "expired ticket" };
  return { ok: true, claims };
}

export function publicKeyFromPem(pem: string): KeyObject {
  return createPublicKey(pem);
}
