/**
 * Worker-pool task: encodes one column range of a large object's shards. The object's padded data shards and
 * the parity shards live in SharedArrayBuffers, so each worker reads its columns and writes its parity bytes in
 * place; nothing is copied through messages. Columns are independent in Reed-Solomon, so the ranges can be
 * encoded in any order on any thread.
 */
import { ReedSolomon } from "../../kernels/erasure.js";
import { ready } from "../../wasm/loader.js";

export interface EncodeColumnsTask {
  /** k x shardSize bytes: data shard j at [j * shardSize, (j + 1) * shardSize). */
  data: SharedArrayBuffer;
  /** m x shardSize bytes, written by the task. */
  parity: SharedArrayBuffer;
  dataShards: number;
  parityShards: number;
  shardSize: number;
  /** Column range [from, to) of every shard. */
  from: number;
  to: number;
}

const coders = new Map<string, ReedSolomon>();

export async function encodeColumns(task: EncodeColumnsTask): Promise<number> {
  await ready();
  const { dataShards: k, parityShards: m, shardSize, from, to } = task;
  const key = `${k}/${m}`;
  let rs = coders.get(key);
  if (rs === undefined) {
    rs = new ReedSolomon(k, m);
    coders.set(key, rs);
  }
  const data = Array.from(
    { length: k },
    (_, j) => new Uint8Array(task.data, j * shardSize + from, to - from),
  );
  const parity = Array.from(
    { length: m },
    (_, r) => new Uint8Array(task.parity, r * shardSize + from, to - from),
  );
  rs.encode(data, parity);
  return to - from;
}
