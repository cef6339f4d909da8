/**
 * Static sharding for batch schedulers (Slurm array jobs, Kubernetes Indexed Jobs): shard K of N
 * runs the runs whose spec hash is K modulo N. A run's shard depends only on its own spec hash
 * and N, so every machine computes the same split from the same config, reruns find the same
 * runs, and adding a backend to the config moves no other run to another shard. The price:
 * with few runs the shards can be uneven (a work queue, `kvlab worker`, balances instead).
 */
import { ConfigError } from "../errors.ts";

export interface Shard {
  /** 0-based index, 0 <= index < count (SLURM_ARRAY_TASK_ID with --array=0-(N-1), JOB_COMPLETION_INDEX). */
  index: number;
  count: number;
}

/** Parse `K/N` (0-based K). Errors name the flag and say what is accepted. */
export function parseShard(value: string, flag = "--shard"): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  if (!m)
    throw new ConfigError(
      flag,
      `expected K/N (shard K of N, K counted from 0), e.g. --shard 0/4 or --shard $SLURM_ARRAY_TASK_ID/4; got ${JSON.stringify(value)}`,
    );
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (!Number.isSafeInteger(count) || count < 1)
    throw new ConfigError(flag, `${value}: N must be at least 1 (the number of shards)`);
  if (!Number.isSafeInteger(index) || index >= count)
    throw new ConfigError(
      flag,
      `${value}: K must be between 0 and ${count - 1} (shards are counted from 0; with Slurm use --array=0-${count - 1})`,
    );
  return { index, count };
}

/** The shard a spec hash (16 hex digits) belongs to. */
export function shardOf(hash: string, count: number): number {
  if (!/^[0-9a-f]{1,16}$/.test(hash)) throw new Error(`not a spec hash: ${JSON.stringify(hash)}`);
  return Number(BigInt(`0x${hash}`) % BigInt(count));
}

export function inShard(hash: string, shard: Shard): boolean {
  return shardOf(hash, shard.count) === shard.index;
}

/** The file tag of a shard: runs.<K>-of-<N>.jsonl, baseline.<K>-of-<N>.kvlb, .lock.<K>-of-<N>. */
export function shardTag(shard: Shard): string {
  return `${shard.index}-of-${shard.count}`;
}
