/**
 * The committed built-in models (models/sotu-llama, models/sotu-llama-long) and held-out text (data/sotu): the files exist,
 * config.json agrees with the safetensors header tensor by tensor, the weights are finite fp16,
 * and tokenizer.json loads in @huggingface/tokenizers, round-trips text, and encodes the held-out
 * text to exactly the ids the Python trainer produced (reference.json holds their count and hash;
 * the trainer's BPE is an independent implementation, so agreement is a real cross-check).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "@huggingface/tokenizers";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const heldoutPath = join(root, "data", "sotu", "heldout.txt");

interface Config {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  bos_token_id: number;
  eos_token_id: number;
  torch_dtype: string;
}
interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const readJson = <T>(p: string): T => JSON.parse(readFileSync(p, "utf8")) as T;

function readHeader(buf: Buffer): { entries: Record<string, HeaderEntry>; dataStart: number } {
  const n = Number(buf.readBigUInt64LE(0));
  const raw = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, unknown>;
  delete raw.__metadata__;
  return { entries: raw as Record<string, HeaderEntry>, dataStart: 8 + n };
}

/** HF Llama tensor names and shapes implied by the config alone. */
function expectedShapes(c: Config): Map<string, number[]> {
  const d = c.hidden_size;
  const m = new Map<string, number[]>([
    ["model.embed_tokens.weight", [c.vocab_size, d]],
    ["model.norm.weight", [d]],
  ]);
  if (!c.tie_word_embeddings) m.set("lm_head.weight", [c.vocab_size, d]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    m.set(`${p}input_layernorm.weight`, [d]);
    m.set(`${p}post_attention_layernorm.weight`, [d]);
    m.set(`${p}self_attn.q_proj.weight`, [c.num_attention_heads * c.head_dim, d]);
    m.set(`${p}self_attn.k_proj.weight`, [c.num_key_value_heads * c.head_dim, d]);
    m.set(`${p}self_attn.v_proj.weight`, [c.num_key_value_heads * c.head_dim, d]);
    m.set(`${p}self_attn.o_proj.weight`, [d, c.num_attention_heads * c.head_dim]);
    m.set(`${p}mlp.gate_proj.weight`, [c.intermediate_size, d]);
    m.set(`${p}mlp.up_proj.weight`, [c.intermediate_size, d]);
    m.set(`${p}mlp.down_proj.weight`, [d, c.intermediate_size]);
  }
  return m;
}

for (const name of ["sotu-llama", "sotu-llama-long"]) {
  const modelDir = join(root, "models", name);

  test(`${name}: files and held-out text are committed`, () => {
    for (const f of [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
      "README.md",
    ]) {
      assert.ok(existsSync(join(modelDir, f)), `missing ${join(modelDir, f)}`);
    }
    assert.ok(existsSync(heldoutPath), `missing ${heldoutPath}`);
    assert.ok(readFileSync(heldoutPath, "utf8").length > 10_000, "held-out text is suspiciously short");
  });

  test(`${name}: config.json matches the safetensors header; weights are finite fp16`, () => {
    const c = readJson<Config>(join(modelDir, "config.json"));
    assert.equal(c.model_type, "llama");
    assert.equal(c.torch_dtype, "float16");
    assert.equal(c.head_dim, 64, "head_dim 64 keeps KV group sizes 32/64 realistic");
    assert.ok(c.num_key_value_heads < c.num_attention_heads, "GQA: fewer KV heads than query heads");
    assert.equal(c.num_attention_heads % c.num_key_value_heads, 0);

    const buf = readFileSync(join(modelDir, "model.safetensors"));
    const { entries, dataStart } = readHeader(buf);
    const want = expectedShapes(c);
    assert.deepEqual(Object.keys(entries).sort(), [...want.keys()].sort());
    const spans: [number, number][] = [];
    let params = 0;
    for (const [name, e] of Object.entries(entries)) {
      assert.equal(e.dtype, "F16", name);
      assert.deepEqual(e.shape, want.get(name), name);
      const n = e.shape.reduce((a, b) => a * b, 1);
      assert.equal(e.data_offsets[1] - e.data_offsets[0], 2 * n, `${name}: byte span != 2 * elements`);
      spans.push(e.data_offsets);
      params += n;
    }
    spans.sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [b, e] of spans) {
      assert.equal(b, at, "tensor data must be contiguous, without gaps or overlaps");
      at = e;
    }
    assert.equal(dataStart + at, buf.length, "data must end exactly at the end of the file");
    assert.ok(params >= 1e6 && params <= 5e6, `parameter count ${params} outside 1-5 M`);

    // fp16 with all exponent bits set is Inf or NaN.
    const halves = new Uint16Array(buf.buffer.slice(buf.byteOffset + dataStart, buf.byteOffset + buf.length));
    let bad = 0;
    for (const h of halves) if ((h & 0x7c00) === 0x7c00) bad++;
    assert.equal(bad, 0, "non-finite fp16 weights");
  });

  test(`${name}: tokenizer.json loads, agrees with config, round-trips text, and matches the trainer's ids`, () => {
    const c = readJson<Config>(join(modelDir, "config.json"));
    const tok = new Tokenizer(
      readJson<object>(join(modelDir, "tokenizer.json")),
      readJson<object>(join(modelDir, "tokenizer_config.json")),
    );
    assert.equal(tok.get_vocab(true).size, c.vocab_size);
    assert.equal(tok.token_to_id("<s>"), c.bos_token_id);
    assert.equal(tok.token_to_id("</s>"), c.eos_token_id);

    for (const s of [
      "Mr. Speaker, the State of the Union is strong.",
      "In 1865: $3,000,000 — “ïó” tabs\tand\n\nlines  ",
    ]) {
      const ids: number[] = tok.encode(s, { add_special_tokens: false }).ids;
      assert.ok(ids.every((i) => i >= 0 && i < c.vocab_size));
      assert.equal(tok.decode(ids, { skip_special_tokens: true }), s);
    }

    const text = readFileSync(heldoutPath, "utf8");
    const ids: number[] = tok.encode(text).ids; // the template adds BOS
    assert.equal(ids[0], c.bos_token_id);
    assert.equal(tok.decode(ids, { skip_special_tokens: true }), text);
    const ref = readJson<{ tokens_with_bos: number; ids_sha256: string; first_ids: number[] }>(
      join(modelDir, "reference.json"),
    );
    assert.deepEqual(ids.slice(0, ref.first_ids.length), ref.first_ids);
    assert.equal(ids.length, ref.tokens_with_bos);
    assert.equal(createHash("sha256").update(ids.join(",")).digest("hex"), ref.ids_sha256);
  });
}
