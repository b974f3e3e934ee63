/**
 * `dataCompFields()`: attaches DataComp's filter columns (`text`, `original_width`,
 * `original_height`, and `clip_score` from a column or the npz) to each {@link EmbeddingBatch} as
 * `fields`, reading the shards' metadata in lockstep with the batches (which come in the same
 * global row order and never span shards). Put it right after a `--datacomp` embedding source and
 * before `basicFilter` / `clipScoreFilter`.
 */
import { Transform } from 'node:stream';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { BATCH_HIGH_WATER_MARK, type BatchFields, type EmbeddingBatch } from '../core/sample.js';
import { dataCompColumnBatches, resolveDataCompShards, type ClipScoreSource, type DataCompColumns } from '../io/datacomp.js';

/** Options of {@link dataCompFields}: the DataComp shards the embedding source reads and where to take `clip_score` from. */
export interface DataCompFieldsOptions {
  /** The same shards the embedding source reads (folder or globs). */
  datacomp: string | string[];
  /** Also attach `clip_score` (column, or cosine from the npz). */
  score?: ClipScoreSource;
  signal?: AbortSignal;
}

/** Cuts a stream of column chunks into runs of exactly `n` rows. */
class ColumnCutter {
  private cur: DataCompColumns | undefined;
  private pos = 0;
  constructor(private readonly it: AsyncIterator<DataCompColumns>) {}

  async take(n: number): Promise<BatchFields> {
    const text: (string | null)[] = [];
    const width = new Float64Array(n);
    const height = new Float64Array(n);
    let score: Float64Array | undefined;
    let fill = 0;
    while (fill < n) {
      if (!this.cur || this.pos >= this.cur.rows) {
        const r = await this.it.next();
        if (r.done) throw new DbpruneError(ErrorCodes.ROW_COUNT_MISMATCH, `DataComp metadata ended after ${fill} of a batch's ${n} rows`, { row: fill });
        this.cur = r.value;
        this.pos = 0;
      }
      const c = this.cur;
      const k = Math.min(n - fill, c.rows - this.pos);
      for (let i = 0; i < k; i++) text.push(c.text[this.pos + i]);
      width.set(c.width.subarray(this.pos, this.pos + k), fill);
      height.set(c.height.subarray(this.pos, this.pos + k), fill);
      if (c.score) {
        score ??= new Float64Array(n);
        score.set(c.score.subarray(this.pos, this.pos + k), fill);
      }
      this.pos += k;
      fill += k;
    }
    return { text, original_width: width, original_height: height, clip_score: score };
  }

  async close(): Promise<void> {
    await this.it.return?.(undefined);
  }
}

/**
 * Attaches DataComp's filter columns (text, original size, clip_score) to each EmbeddingBatch as `fields`, read in lockstep with the batches.
 * Throws ERR_DBPRUNE_ROW_COUNT_MISMATCH when the metadata and the embeddings disagree.
 */
export function dataCompFields(opts: DataCompFieldsOptions): Transform {
  let cutter: ColumnCutter | undefined;
  const open = async (): Promise<ColumnCutter> => {
    const shards = await resolveDataCompShards(opts.datacomp);
    return new ColumnCutter(dataCompColumnBatches(shards, { score: opts.score, signal: opts.signal })[Symbol.asyncIterator]());
  };
  return new Transform({
    objectMode: true,
    highWaterMark: BATCH_HIGH_WATER_MARK,
    transform(batch: EmbeddingBatch, _enc, cb) {
      (async () => {
        cutter ??= await open();
        batch.fields = { ...batch.fields, ...(await cutter.take(batch.rows.length)) };
        return batch;
      })().then((b) => cb(null, b), cb);
    },
    flush(cb) {
      (cutter ? cutter.close() : Promise.resolve()).then(() => cb(), cb);
    },
    destroy(err, cb) {
      (cutter ? cutter.close() : Promise.resolve()).then(() => cb(err), () => cb(err));
    },
  });
}
