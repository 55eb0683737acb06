import type { IncomingHttpHeaders } from "node:http";
import { isIP } from "node:net";
import { printable } from "../../shared/ids.js";

/**
 * The checks every request to the web UI passes before anything else runs: who may
 * name us (Host) and from which page (Origin, Sec-Fetch-Site). Pure functions of the
 * headers, so each attack they stop has a unit test besides the end-to-end one.
 */

/** An address of 127.0.0.0/8 or ::1 (also as an IPv4-mapped IPv6 address), or `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

/** `0.0.0.0` or `::`: every interface. */
export function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}

/** The name in a Host header, lowercased, without port or IPv6 brackets; undefined if malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.toLowerCase();
  const m = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h) ?? /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(h);
  return m?.[1];
}

/**
 * Which Host names the server answers to: the address it is bound to, `localhost`,
 * and the names the user allowed. A page that reached us through a name it controls
 * (DNS rebinding: its name first resolved to its own server, then to 127.0.0.1) sends
 * that name, and is refused. An IP literal cannot be rebound, so on a wildcard bind
 * any literal address is accepted too.
 */
export class HostRule {
  readonly #names: ReadonlySet<string>;
  readonly #anyAddress: boolean;

  constructor(bindHost: string, allowed: readonly string[]) {
    const names = new Set(["localhost", ...allowed.map((n) => n.toLowerCase())]);
    if (!isWildcard(bindHost)) names.add(bindHost.toLowerCase());
    this.#names = names;
    this.#anyAddress = isWildcard(bindHost);
  }

  allows(header: string | undefined): boolean {
    const name = hostName(header);
    if (name === undefined) return false;
    return this.#names.has(name) || (this.#anyAddress && isIP(name) !== 0);
  }
}

/**
 * Why a request comes from another site's page, or undefined if it does not. A browser
 * sends `Origin` on every cross-origin request and on same-origin ones that change
 * state, and `Sec-Fetch-Site` on all of them; a script (curl) sends neither. Both must
 * name this very origin: `same-site` is refused too, since another program's page on
 * localhost:OTHER is the same site as ours. `none` is a user's own navigation (typed,
 * bookmarked, opened from the terminal).
 */
export function crossSite(headers: IncomingHttpHeaders, scheme: "http" | "https"): string | undefined {
  const origin = headers.origin;
  if (origin !== undefined && origin.toLowerCase() !== `${scheme}://${headers.host?.toLowerCase()}`)
    return `a request from the page at ${printable(origin, 200)}`;
  const site = headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none")
    return `a ${printable(site, 40)} request (Sec-Fetch-Site)`;
  return undefined;
}
