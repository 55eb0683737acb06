import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { peerKeyOf } from "../shared/peerKey.js";
import { selfSignedCertificate } from "../shared/x509.js";
import { PEER_KEY_FILE, STATE_DIR_MODE, STATE_FILE_MODE } from "./state.js";

/**
 * This client's own key pair: what its peer server proves to downloaders, and what
 * it proves to sharers when it downloads. The tracker hands out its public half
 * with this client's address and names it in the tickets it signs for this client.
 */
export interface PeerIdentity {
  /** PEM: the Ed25519 private key, then a self-signed certificate for it (what TLS presents). */
  key: string;
  cert: string;
  /** The public key as the tracker and tickets carry it (peerKeyOf). */
  publicKey: string;
}

/** A fresh key pair's identity, in memory (loadPeerIdentity keeps one in the state folder). */
export function newPeerIdentity(): PeerIdentity {
  return identityOf(generateKeyPairSync("ed25519").privateKey);
}

function identityOf(privateKey: KeyObject): PeerIdentity {
  return {
    key: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    cert: selfSignedCertificate(privateKey, "groupshare peer"),
    publicKey: peerKeyOf(createPublicKey(privateKey)),
  };
}

/**
 * The key in `<stateDir>/peer_key.pem`, made at first start (owner-only, 0600). The
 * certificate is made afresh at each start: only the key is trusted, never the
 * certificate's other fields.
 */
export async function loadPeerIdentity(stateDir: string): Promise<PeerIdentity> {
  const path = join(stateDir, PEER_KEY_FILE);
  try {
    return identityOf(createPrivateKey(await readFile(path, "utf8")));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(`cannot read this client's key ${path}: ${(err as Error).message}`);
    }
  }
  const id = newPeerIdentity();
  await mkdir(stateDir, { recursive: true, mode: STATE_DIR_MODE });
  // wx: two clients starting on one state folder at once keep one key
  await writeFile(path, id.key, { mode: STATE_FILE_MODE, flag: "wx" }).catch(async (err) => {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
    throw err;
  });
  await chmod(path, STATE_FILE_MODE);
  return identityOf(createPrivateKey(await readFile(path, "utf8")));
}
