/**
 * Float32 input buffers handed back by an ORT worker (transferred there and back), kept for the
 * next runs so that every batch does not allocate a new one (and the GC keep the old). Used by the
 * nearest-centroid worker (ort-worker.ts) and the image encoder's (encoder-worker.ts).
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];

  /** Keeps at most `max` buffers. */
  constructor(private readonly max: number) {}

  /** A view of `length` floats on a kept buffer big enough, else on a new one. */
  take(length: number): Float32Array {
    const i = this.free.findIndex((b) => b.byteLength >= length * 4);
    const buf = i >= 0 ? this.free.splice(i, 1)[0] : new ArrayBuffer(length * 4);
    return new Float32Array(buf, 0, length);
  }

  /** Keeps `b` for a later {@link take} (an emptied, i.e. transferred-away, buffer is dropped). */
  give(b: ArrayBuffer): void {
    if (b.byteLength > 0 && this.free.length < this.max) this.free.push(b);
  }

  /** Drops every kept buffer. */
  clear(): void {
    this.free.length = 0;
  }
}
