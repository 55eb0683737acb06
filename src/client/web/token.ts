import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { isIP } from "node:net";
import { join } from "node:path";
import { makeCertificate } from "../../shared/x509.js";
import { ownerOnlyFile, WEB_KEY_FILE, WEB_TOKEN_FILE } from "../state.js";
import { isWildcard } from "./guard.js";

/**
 * The web UI's token: 32 random bytes, base64url (43 characters). It is the whole of
 * the API's authentication, for the page and for scripts alike, so it is kept in the
 * state folder (owner-only) and stays the same across restarts. Deleting the file and
 * restarting the client makes a new one: pages and scripts with the old one get 401.
 */
export const WEB_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function newWebToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * Equal tokens, in time that does not depend on where they differ: both are hashed
 * first, so their lengths do not show either.
 */
export function tokensEqual(a: string, b: string): boolean {
  const h = (s: string) => createHash("sha256").update(s, "utf8").digest();
  return timingSafeEqual(h(a), h(b));
}

/** The token in `<stateDir>/web_token`, made (0600) at first use. */
export async function loadWebToken(stateDir: string): Promise<string> {
  const token = (await ownerOnlyFile(stateDir, WEB_TOKEN_FILE, () => `${newWebToken()}\n`)).trim();
  if (!WEB_TOKEN_PATTERN.test(token))
    throw new Error(
      `${join(stateDir, WEB_TOKEN_FILE)} does not hold a web token: delete it and a new one is made`,
    );
  return token;
}

/**
 * The web UI's HTTPS identity off loopback: an ECDSA P-256 key kept in
 * `<stateDir>/web_key.pem` (0600), and a self-signed certificate made at each start
 * that names `host` when it is one address. Not the client's peer key: that one is
 * Ed25519, whose certificates Chrome and Safari refuse in TLS.
 */
export async function loadWebTls(stateDir: string, host: string): Promise<{ key: string; cert: string }> {
  const make = () =>
    generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    }) as string;
  const key = await ownerOnlyFile(stateDir, WEB_KEY_FILE, make);
  const privateKey = createPrivateKey(key);
  const cert = makeCertificate({
    publicKey: createPublicKey(privateKey),
    signingKey: privateKey,
    commonName: "groupshare web UI",
    ...(isIP(host) !== 0 && !isWildcard(host) && { ips: [host] }),
  });
  return { key, cert };
}
