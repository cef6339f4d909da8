/**
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__? }`, then the data, with
 * offsets relative to byte 8 + N. Only the header is read here; tensor bytes are read on load.
 * Every inconsistency is reported with the file and the byte offset where it shows.
 */
import { ModelFormatError } from "../errors.ts";
import { parseStrictJson } from "./json-strict.ts";
import { type FileSet, numel, type TensorEntry } from "./tensors.ts";

/** The safetensors format caps the JSON header at 100 MB. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of every dtype the safetensors format defines. */
const SAFETENSORS_DTYPES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  U64: 8,
  I32: 4,
  U32: 4,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** Parse one safetensors file's header into entries (absolute offsets). */
export function readSafetensorsHeader(files: FileSet, file: string): TensorEntry[] {
  const size = files.size(file);
  if (size < 8)
    throw new ModelFormatError(
      file,
      `file is ${size} bytes, shorter than the 8-byte header length: truncated`,
      0,
    );
  const lenBytes = files.read(file, 0, 8, "header length");
  const len = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (len > MAX_HEADER_BYTES)
    throw new ModelFormatError(
      file,
      `header length ${len} exceeds the ${MAX_HEADER_BYTES}-byte limit of the safetensors format: not a safetensors file or a corrupt header`,
      0,
    );
  if (len > size - 8)
    throw new ModelFormatError(
      file,
      `header length ${len} runs past the end of the file (${size} bytes): the header length is wrong or the file is truncated`,
      0,
    );
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(files.read(file, 8, len, "header"));
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    throw new ModelFormatError(file, `header (${len} bytes) is not valid UTF-8 (${err.message})`, 8);
  }
  const parsed = parseStrictJson(text);
  if (!parsed.ok)
    throw new ModelFormatError(
      file,
      `header (${len} bytes): ${parsed.message}${parsed.byte === undefined ? ": the header length may be wrong" : ""}`,
      8 + (parsed.byte ?? 0),
    );
  const header = parsed.value;
  if (typeof header !== "object" || header === null || Array.isArray(header))
    throw new ModelFormatError(file, "header is not a JSON object", 8);
  const dataStart = 8 + len;
  const out: TensorEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw))
        throw new ModelFormatError(file, "__metadata__ in the header is not an object", 8);
      continue;
    }
    const r = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    const bad = (what: string) => new ModelFormatError(file, `tensor "${name}" in the header: ${what}`, 8);
    if (typeof r !== "object" || r === null) throw bad("entry is not an object");
    if (typeof r.dtype !== "string") throw bad("missing dtype");
    const elBytes = SAFETENSORS_DTYPES[r.dtype];
    if (elBytes === undefined)
      throw bad(
        `unknown dtype "${r.dtype}" (safetensors defines ${Object.keys(SAFETENSORS_DTYPES).join(", ")})`,
      );
    if (!Array.isArray(r.shape) || r.shape.some((d) => !Number.isInteger(d) || d < 0))
      throw bad("shape is not a list of non-negative integers");
    const off = r.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((o) => Number.isInteger(o) && o >= 0) ||
      off[1] < off[0]
    )
      throw bad("data_offsets is not [begin, end]");
    const shape = r.shape as number[];
    const [b, e] = off as [number, number];
    if (e - b !== numel(shape) * elBytes)
      throw bad(
        `data_offsets [${b}, ${e}] hold ${e - b} bytes but shape [${shape.join(", ")}] of ${r.dtype} needs ${numel(shape) * elBytes}`,
      );
    if (dataStart + e > size)
      throw new ModelFormatError(
        file,
        `tensor "${name}" needs bytes [${dataStart + b}, ${dataStart + e}) but the file ends at byte ${size}: it is truncated; re-download or re-export it`,
        size,
      );
    out.push({ name, dtype: r.dtype, shape, file, offset: dataStart + b, headerOffset: 8 });
  }
  // As the safetensors library: the byte ranges, sorted, tile the data exactly (no gap, no
  // overlap, no alias, nothing after the last tensor).
  const sorted = [...out].sort((x, y) => x.offset - y.offset || numel(x.shape) - numel(y.shape));
  let at = dataStart;
  for (const t of sorted) {
    if (t.offset !== at)
      throw new ModelFormatError(
        file,
        t.offset < at
          ? `tensor "${t.name}" starts at data byte ${t.offset - dataStart}, inside the previous tensor (which ends at ${at - dataStart}): byte ranges overlap`
          : `tensor "${t.name}" starts at data byte ${t.offset - dataStart} but the previous tensor ends at ${at - dataStart}: the data has a gap`,
        t.offset,
      );
    at += numel(t.shape) * SAFETENSORS_DTYPES[t.dtype]!;
  }
  if (at !== size)
    throw new ModelFormatError(
      file,
      `the tensors cover data bytes [0, ${at - dataStart}) but the file holds ${size - dataStart} data bytes after the header: the header length or an offset is wrong`,
      at,
    );
  return out;
}
