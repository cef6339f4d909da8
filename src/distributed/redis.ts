/**
 * Redis connections for the work queue (BullMQ on ioredis). An unreachable or silent server is
 * one KvlabError naming the URL, the flag and the timeout, never an endless reconnect loop.
 */
import { Redis } from "ioredis";
import { ConfigError, KvlabError } from "../errors.ts";

/** Default BullMQ queue name (`--queue`). */
export const DEFAULT_QUEUE = "kvlab";
/** Seconds to wait for Redis to answer before giving up (`--redis-timeout`). */
export const DEFAULT_REDIS_TIMEOUT_S = 5;

/** The URL with its password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}

export function checkRedisUrl(url: string, flag = "--redis"): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(
      flag,
      `${JSON.stringify(url)} is not a URL; give redis://HOST:PORT[/DB] (or rediss:// for TLS)`,
    );
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:")
    throw new ConfigError(
      flag,
      `${redactUrl(url)}: expected a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379`,
    );
  return url;
}

export function parseTimeout(value: string | undefined, flag = "--redis-timeout"): number {
  if (value === undefined) return DEFAULT_REDIS_TIMEOUT_S;
  const s = Number(value);
  if (!Number.isFinite(s) || s <= 0)
    throw new ConfigError(flag, `expected seconds > 0, got ${JSON.stringify(value)}`);
  return s;
}

/**
 * Connect and PING within `timeoutS`, then hand back a client that BullMQ can use
 * (maxRetriesPerRequest: null, as its workers require; it reconnects if Redis restarts later).
 */
export async function connectRedis(url: string, timeoutS = DEFAULT_REDIS_TIMEOUT_S): Promise<Redis> {
  checkRedisUrl(url);
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutS * 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null, // the first failure is final: report it, do not loop
    enableOfflineQueue: false,
  });
  // The socket's error (ECONNREFUSED, ENOTFOUND ...) says more than the rejection ("Connection is closed").
  let socketError: Error | undefined;
  probe.on("error", (err: Error) => {
    socketError ??= err;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await probe.connect();
        await probe.ping();
      })(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutS}s`)), timeoutS * 1000);
      }),
    ]);
  } catch (err) {
    throw new KvlabError(
      `cannot reach Redis at ${redactUrl(url)} (--redis): ${(socketError ?? (err as Error)).message || String(err)}; start redis-server there, check the URL, or raise --redis-timeout`,
    );
  } finally {
    clearTimeout(timer);
    probe.disconnect();
  }
  const client = new Redis(url, { maxRetriesPerRequest: null, connectTimeout: timeoutS * 1000 });
  client.on("error", (err) => console.error(`redis ${redactUrl(url)}: ${err.message}`));
  return client;
}

/** Where Redis-stored records of one experiment live: a hash, field = spec hash, value = record JSON. */
export function recordsKey(queue: string, experiment: string): string {
  return `kvlab:${queue}:records:${experiment}`;
}
