/**
 * node dist/bench/hashOne.js <file>
 *
 * upload_file's hashing alone (every piece's SHA1 and the whole file's), as the
 * client runs it: prints "ms <elapsed> sha1 <hex>".
 */
import { hashFile } from "../src/client/hashing/hasher.js";

const [path] = process.argv.slice(2);
if (!path) {
  process.stderr.write("usage: hashOne.js <file>\n");
  process.exit(2);
}
const started = performance.now();
const h = await hashFile(path);
process.stdout.write(`ms ${(performance.now() - started).toFixed(1)} sha1 ${h.sha1}\n`);
