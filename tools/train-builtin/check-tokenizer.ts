/**
 * Checks that @huggingface/tokenizers encodes a text exactly as the Python trainer did.
 * Usage: node --import tsx tools/train-builtin/check-tokenizer.ts <model-dir> <text-file> <ids-json>
 * where ids-json is a JSON array of the trainer's ids for the text (BOS included).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [dir, textPath, idsPath] = process.argv.slice(2);
if (!dir || !textPath || !idsPath) {
  console.error("usage: check-tokenizer.ts <model-dir> <text-file> <ids-json>");
  process.exit(2);
}
const tok = new Tokenizer(
  JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
  JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
);
const text = readFileSync(textPath, "utf8");
const want: number[] = JSON.parse(readFileSync(idsPath, "utf8"));
const got = tok.encode(text).ids;
let firstDiff = -1;
for (let i = 0; i < Math.max(got.length, want.length); i++) {
  if (got[i] !== want[i]) {
    firstDiff = i;
    break;
  }
}
const roundTrip = tok.decode(got, { skip_special_tokens: true }) === text;
console.log(`tokens js=${got.length} py=${want.length} firstDiff=${firstDiff} roundTrip=${roundTrip}`);
if (firstDiff >= 0) {
  console.log("js:", got.slice(Math.max(0, firstDiff - 5), firstDiff + 10));
  console.log("py:", want.slice(Math.max(0, firstDiff - 5), firstDiff + 10));
}
process.exit(firstDiff < 0 && roundTrip ? 0 : 1);
