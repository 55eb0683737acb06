import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { STATE_DIR_MODE, STATE_FILE_MODE, WEB_TOKEN_FILE } from "../state.js";

/**
 * The web UI's token: 32 random bytes, base64url (43 characters). It is the whole of
 * the API's authentication, for the page and for scripts alike, so it is kept in the
 * state folder (owner-only) and stays the same across restarts until rotated.
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
  const path = join(stateDir, WEB_TOKEN_FILE);
  let text: string | undefined;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT")
      throw new Error(`cannot read the web token ${path}: ${(err as Error).message}`);
  }
  if (text === undefined) {
    await mkdir(stateDir, { recursive: true, mode: STATE_DIR_MODE });
    // wx: two clients starting on one state folder at once keep one token
    await writeFile(path, `${newWebToken()}\n`, { mode: STATE_FILE_MODE, flag: "wx" }).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    });
    text = await readFile(path, "utf8");
  }
  await chmod(path, STATE_FILE_MODE);
  const token = text.trim();
  if (!WEB_TOKEN_PATTERN.test(token))
    throw new Error(`${path} does not hold a web token: delete it and a new one is made`);
  return token;
}

/**
 * A new token in place of the old one (written beside it, then renamed: the file holds
 * the old token or the new one). Pages and scripts that used the old one get 401.
 */
export async function rotateWebToken(stateDir: string): Promise<string> {
  const path = join(stateDir, WEB_TOKEN_FILE);
  const token = newWebToken();
  await mkdir(stateDir, { recursive: true, mode: STATE_DIR_MODE });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${token}\n`, { mode: STATE_FILE_MODE });
  await chmod(tmp, STATE_FILE_MODE);
  await rename(tmp, path);
  return token;
}
