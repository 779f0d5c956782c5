import { Transform, type TransformCallback } from 'node:stream';

/**
 * Splits a byte stream into text lines. Docker's event and progress streams
 * are newline-delimited JSON whose chunks can end in the middle of a line.
 */
export class LineSplitter {
  private pending = '';

  /** Adds a chunk and returns the lines it completed, without newlines. */
  push(chunk: Buffer | string): string[] {
    this.pending += chunk.toString();
    const parts = this.pending.split('\n');
    this.pending = parts.pop() ?? '';
    return parts.map((line) => line.replace(/\r$/, '')).filter((line) => line !== '');
  }

  /** Returns what is left after the stream ended, if anything. */
  flush(): string[] {
    const rest = this.pending.trim();
    this.pending = '';
    return rest ? [rest] : [];
  }
}

/** Parses one JSON line; undefined for a line that is not a JSON object. */
export function parseJsonLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (value === null || typeof value !== 'object') return undefined;
    return value as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Thrown by {@link readPullProgress} when the engine reports a failed pull. */
export class PullProgressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PullProgressError';
  }
}

/**
 * Reads a pull's progress stream to its end. The engine answers 200 before
 * it knows whether the pull will work, so a failure arrives as an `error`
 * record inside the stream and must be turned into a rejection here.
 */
export async function readPullProgress(stream: AsyncIterable<Buffer | string>): Promise<void> {
  const lines = new LineSplitter();
  for await (const chunk of stream) {
    lines.push(chunk).forEach(throwOnPullError);
  }
  lines.flush().forEach(throwOnPullError);
}

function throwOnPullError(line: string): void {
  const record = parseJsonLine(line);
  if (!record) return;

  const detail = record.errorDetail as { message?: unknown } | undefined;
  const message = record.error ?? detail?.message;
  if (message !== undefined) throw new PullProgressError(String(message));
}

const FRAME_HEADER_BYTES = 8;

/**
 * Undoes Docker's stdout/stderr multiplexing: each frame is an 8-byte header
 * (stream type, three zero bytes, big-endian payload length) and a payload.
 * Both streams are merged in arrival order.
 */
export function createLogDemuxer(): Transform {
  let buffered: Buffer = Buffer.alloc(0);

  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= FRAME_HEADER_BYTES) {
        const size = buffered.readUInt32BE(4);
        const end = FRAME_HEADER_BYTES + size;
        if (buffered.length < end) break;
        this.push(buffered.subarray(FRAME_HEADER_BYTES, end));
        buffered = buffered.subarray(end);
      }
      done();
    },
  });
}
