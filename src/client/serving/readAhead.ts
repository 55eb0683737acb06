/** What readAhead reads from: a FileHandle, or a descriptor shared with another thread. */
export interface PositionalReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/**
 * The first `length` bytes of a file, in chunks of `chunkSize`, with the next read
 * running (on libuv's pool) while the caller hashes the current chunk. Two buffers,
 * whatever the file's size: a chunk is valid until the next one is asked for.
 */
export async function* readAhead(
  fh: PositionalReader,
  length: number,
  chunkSize: number,
  path: string,
): AsyncGenerator<Buffer> {
  const bufs = [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)] as const;
  const readInto = (i: 0 | 1, at: number) => {
    const r = fh.read(bufs[i], 0, Math.min(chunkSize, length - at), at);
    r.catch(() => {}); // awaited below; not unhandled if the caller stops first
    return r;
  };
  let cur: 0 | 1 = 0;
  let next = length > 0 ? readInto(0, 0) : undefined;
  for (let at = 0; at < length; ) {
    const { bytesRead } = await next!;
    if (bytesRead === 0) throw new Error(`${path} is shorter than ${length} bytes (did it change?)`);
    const chunk = bufs[cur].subarray(0, bytesRead);
    at += bytesRead;
    cur = cur === 0 ? 1 : 0;
    if (at < length) next = readInto(cur, at);
    yield chunk;
  }
}
