import type { TicketClaims } from "../../shared/tickets.js";
import { RejectCode } from "../../wire/index.js";
import type { ShareRegistry, SharedFile } from "./shares.js";

export type Access = { ok: true; share: SharedFile } | { ok: false; code: RejectCode; reason: string };

/**
 * The one decision of what a checked ticket may read here, at the handshake and
 * before every piece: the share of the ticket's group with the ticket's file id,
 * while the ticket lasts. Never a share of another group, however alike the bytes.
 */
export function shareFor(shares: ShareRegistry, claims: TicketClaims, fileId: string, now: number): Access {
  if (claims.exp < now) {
    return { ok: false, code: RejectCode.BAD_TICKET, reason: "ticket expired without a renewal" };
  }
  if (claims.f !== fileId)
    return { ok: false, code: RejectCode.BAD_TICKET, reason: "ticket is for another file" };
  const share = shares.get(claims.g, fileId);
  if (!share) return { ok: false, code: RejectCode.NOT_SHARED, reason: "file not shared in that group here" };
  return { ok: true, share };
}
