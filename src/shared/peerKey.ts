import { createPublicKey, type KeyObject, type X509Certificate } from "node:crypto";

/**
 * A peer's public key as the tracker, its answers and tickets carry it: the base64
 * of its SubjectPublicKeyInfo (DER). Ed25519 only: 60 characters.
 */
export function peerKeyOf(key: KeyObject | X509Certificate): string {
  const k = "export" in key ? key : key.publicKey;
  return k.export({ type: "spki", format: "der" }).toString("base64");
}

/** The form peerKeyOf writes for an Ed25519 key. */
export const PEER_KEY_PATTERN = "^MCowBQYDK2VwAyEA[A-Za-z0-9+/]{43}=$";

/** Undefined when `text` is an Ed25519 public key in the peerKeyOf form, else why not. */
export function peerKeyProblem(text: string): string | undefined {
  if (!new RegExp(PEER_KEY_PATTERN).test(text)) return "not an Ed25519 public key (base64 SPKI)";
  try {
    const k = createPublicKey({ key: Buffer.from(text, "base64"), format: "der", type: "spki" });
    return k.asymmetricKeyType === "ed25519" ? undefined : "not an Ed25519 key";
  } catch {
    return "not a public key";
  }
}
