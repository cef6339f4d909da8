/**
 * The few named error classes kvlab throws for bad input. Each message says what is wrong
 * and what to do; the CLI prints `error: <message>` and exits non-zero without a stack trace.
 */

/** Base class: anything a user can fix by changing their input. */
export class KvlabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A config or cache spec is malformed. `path` is where in the config, e.g. `caches[3].policy.budget`. */
export class ConfigError extends KvlabError {
  constructor(
    readonly path: string,
    readonly detail: string,
    readonly file?: string,
  ) {
    super(`${file ? `${file}: ` : ""}${path ? `${path}: ` : ""}${detail}`);
  }
}

/** A model/data file is malformed. Carries the file and, where known, the byte offset. */
export class ModelFormatError extends KvlabError {
  constructor(
    readonly file: string,
    readonly detail: string,
    readonly offset?: number,
  ) {
    super(`${file}${offset !== undefined ? ` (byte ${offset})` : ""}: ${detail}`);
  }
}

/** Array lengths or dimensions that do not agree. */
export class ShapeError extends KvlabError {}

/** An executor's device (WebGPU adapter, WASM build) is not available on this machine. */
export class DeviceUnavailableError extends KvlabError {}

/** Non-finite or otherwise invalid numeric data where finite data is required. */
export class DataError extends KvlabError {}

/** An API used out of its contract at run time, e.g. a KV cache used after dispose(). */
export class UsageError extends KvlabError {}
