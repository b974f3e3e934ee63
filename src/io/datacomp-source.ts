/**
 * Plans a DataComp pool as an embedding source (see embeddings-source.ts): one part per shard, rows
 * from the npz member `embeddingKey`, SampleRefs (uid as key, url, text as caption) from the parquet.
 * Only the npz directory and the member's `.npy` header are read here (ranged reads on `s3://`).
 */
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { misalignedShard, resolveDataCompShards } from './datacomp.js';
import type { EmbeddingPart, EmbeddingSourcePlan } from './embeddings-source.js';
import { openMetadata } from './metadata.js';
import { NpzFile } from './npz.js';

/**
 * @throws ERR_DBPRUNE_ROW_COUNT_MISMATCH naming the shard when parquet and npz rows differ;
 *   ERR_DBPRUNE_INPUT_FORMAT when the member is missing; ERR_DBPRUNE_DIM_MISMATCH across shards;
 *   ERR_DBPRUNE_INPUT_NOT_FOUND for a shard without its partner file.
 */
export async function planDataCompSource(datacomp: string | string[], embeddingKey: string): Promise<EmbeddingSourcePlan> {
  const shards = await resolveDataCompShards(datacomp);
  const parts: EmbeddingPart[] = [];
  let dim = -1;
  let offset = 0;
  for (const shard of shards) {
    const npz = await NpzFile.open(shard.npz);
    let header;
    try {
      header = await npz.header(embeddingKey);
    } finally {
      npz.close();
    }
    if (header.shape.length !== 2) {
      throw new DbpruneError(ErrorCodes.NPY_FORMAT, `DataComp shard ${shard.name}: ${embeddingKey} must be a 2-D array, got shape (${header.shape.join(', ')})`, { shard: shard.name, file: shard.npz });
    }
    if (dim < 0) dim = header.cols;
    else if (header.cols !== dim) {
      throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `DataComp shard ${shard.name}: ${embeddingKey} has dimension ${header.cols} but earlier shards have ${dim}`, { shard: shard.name, file: shard.npz, expected: dim, got: header.cols });
    }
    const metadata = await openMetadata(shard.parquet, { require: ['uid'] });
    if (metadata.rows !== header.rows) throw misalignedShard(shard, metadata.rows, embeddingKey, header.rows);
    parts.push({ npy: shard.npz, npzMember: embeddingKey, header, rows: header.rows, offset, metadata });
    offset += header.rows;
  }
  return { parts, dim, totalRows: offset };
}
