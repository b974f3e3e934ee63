/**
 * Hands the batches one loop reads to a second consumer on the same thread as they come: exact
 * mode's pass 1 reads every row's SampleRef beside its embedding, and the key check
 * (findKeyProblems) hashes those refs while the assign workers run, instead of reading the keys
 * again after pass 1 while a core idles.
 *
 * Written by hand: a single-producer, single-consumer async queue of a dozen lines with the two
 * properties this needs (the producer waits while `maxQueued` batches are unconsumed; a consumer
 * that stops early never blocks the producer) is smaller than adapting a stream.
 */
export class BatchTap<T> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private ended = false;
  private failure: { error: unknown } | undefined;
  /** The consumer stopped (returned or threw): later pushes are dropped. */
  private detached = false;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;

  constructor(private readonly maxQueued = 4) {}

  /** Queues a batch; resolves once fewer than `maxQueued` batches wait (at once while they do). */
  async push(batch: T): Promise<void> {
    if (this.detached || this.ended) return;
    this.queue.push(batch);
    this.wake('consumer');
    while (this.queue.length >= this.maxQueued && !this.detached) {
      await new Promise<void>((resolve) => {
        this.wakeProducer = resolve;
      });
    }
  }

  /** No more batches: the consumer's loop ends after the queued ones. */
  end(): void {
    this.ended = true;
    this.wake('consumer');
  }

  /** The producer failed: the consumer's loop throws `error` after the queued batches. */
  fail(error: unknown): void {
    this.failure ??= { error };
    this.end();
  }

  private wake(who: 'consumer' | 'producer'): void {
    const w = who === 'consumer' ? this.wakeConsumer : this.wakeProducer;
    if (who === 'consumer') this.wakeConsumer = undefined;
    else this.wakeProducer = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    try {
      for (;;) {
        const batch = this.queue.shift();
        if (batch !== undefined) {
          this.wake('producer');
          yield batch;
          continue;
        }
        if (this.failure) throw this.failure.error;
        if (this.ended) return;
        await new Promise<void>((resolve) => {
          this.wakeConsumer = resolve;
        });
      }
    } finally {
      this.detached = true;
      this.queue.length = 0;
      this.wake('producer');
    }
  }
}
