// vectors.mjs - golden vectors for a tokenizer.json from two implementations of Hugging Face's
// tokenizer semantics, @huggingface/tokenizers (transformers.js's tokenizer code) and
// @lenml/tokenizers; a row is written only where both agree, and where ref.mjs (a from-scratch
// reading of the Rust library) agrees too. Rows they do not all agree on are listed, not written.
//
//   node tools/tokvec/vectors.mjs NPM_DIR LLAMA_CPP_DIR FAMILY FIXTURE_DIR
//
// FAMILY is qwen2, llama3, deepseek-llm or deepseek-coder; FIXTURE_DIR holds tokenizer.json and
// tokenizer_config.json and gets encode.jsonl, pretokenize.jsonl, decode.jsonl,
// decode_skip_special.jsonl.
import fs from "fs";
import path from "path";
import { createRequire } from "module";
import { fileURLToPath } from "url";
import { Ref } from "./ref.mjs";
import { texts } from "./texts.mjs";

const [npm, llamaCpp, family, dir] = process.argv.slice(2);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const req = createRequire(path.join(path.resolve(npm), "package.json"));
const HF = req("@huggingface/tokenizers"), LENML = req("@lenml/tokenizers");

const tj = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
const config = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));

// Both ports split Digits with JavaScript's ASCII-only \d; the Rust library's Digits takes every
// char::is_numeric, which is Split(\p{N}, Isolated): the ports get that spelling of the step.
function portable(t) {
  const c = structuredClone(t);
  const seq = c.pre_tokenizer.pretokenizers || [];
  seq.forEach((s, i) => {
    if (s.type === "Digits") seq[i] = { type: "Split", pattern: { Regex: s.individual_digits ? "\\p{N}" : "\\p{N}+" }, behavior: "Isolated", invert: false };
  });
  return c;
}

const a = new HF.Tokenizer(portable(tj), config);
const b = LENML.TokenizerLoader.fromPreTrained({ tokenizerJSON: portable(tj), tokenizerConfig: config });
const ref = new Ref(tj);

const SYMBOL = new Map();
{
  const bs = [];
  for (let x = 0x21; x <= 0x7e; x++) bs.push(x);
  for (let x = 0xa1; x <= 0xac; x++) bs.push(x);
  for (let x = 0xae; x <= 0xff; x++) bs.push(x);
  const cs = bs.slice();
  let n = 0;
  for (let x = 0; x < 256; x++) if (!bs.includes(x)) { bs.push(x); cs.push(256 + n++); }
  bs.forEach((x, i) => SYMBOL.set(String.fromCodePoint(cs[i]), x));
}
const unsymbol = (p) => new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array([...p].map((c) => SYMBOL.get(c))));

const same = (x, y) => JSON.stringify(x) === JSON.stringify(y);
const excluded = [];

function agree(kind, input, va, vb, vr) {
  if (same(va, vb) && same(va, vr)) return true;
  excluded.push({ kind, input, hf_tokenizers: va, lenml: vb, ref: vr });
  return false;
}

// JSON with the invisible characters escaped: controls, format characters, separators, non-ASCII
// spaces and combining marks (astral characters stay literal).
function jsonLine(o) {
  return JSON.stringify(o).replace(/[\u007f-\u009f\u00a0\u00ad\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963\u09bc-\u09d7\u0b3c-\u0b57\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u0f71-\u0f84\u102b-\u103e\u1160-\u11ff\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u20d0-\u20f0\u3000\u3099\u309a\ufe00-\ufe0f\ufeff]/gu,
    (c) => "\\u" + c.codePointAt(0).toString(16).padStart(4, "0"));
}

function write(name, rows) {
  fs.writeFileSync(path.join(dir, name), rows.map(jsonLine).join("\n") + (rows.length ? "\n" : ""));
  console.log(`${name}: ${rows.length} rows`);
}

const addedIds = new Set(tj.added_tokens.map((t) => t.id));
const hasAdded = (t) => tj.added_tokens.some((x) => t.includes(x.content));

// ---- encode and pre-tokenize ----
const words = ignoreMergesTexts();
const encodeRows = [], preRows = [];
for (const text of texts(family, repo, llamaCpp, words)) {
  const ia = a.encode(text, { add_special_tokens: false }).ids, ib = b.encode(text, { add_special_tokens: false });
  // lossy: Hugging Face's decoder does not give the (normalized) text back (DeepSeek LLM's added
  // byte symbols decode as bytes)
  if (agree("encode", text, ia, ib, ref.encode(text)))
    encodeRows.push(ref.decode(ia, false) === ref.pieces(text).join("") ? { text, ids: ia } : { text, ids: ia, lossy: true });
  if (!text || hasAdded(text)) continue;
  const pa = a.pre_tokenizer.pre_tokenize(a.normalizer ? a.normalizer.normalize(text) : text).map(unsymbol);
  const pb = b.pre_tokenizer(b.normalizer ? b.normalizer(text) : text).map(unsymbol);
  if (agree("pretokenize", text, pa, pb, ref.pieces(text))) preRows.push({ text, pieces: pa });
}
write("encode.jsonl", encodeRows);
write("pretokenize.jsonl", preRows);

// Llama 3 (ignore_merges): the tokens whose text the merges alone encode otherwise, alone and
// in a sentence.
function ignoreMergesTexts() {
  if (!tj.model.ignore_merges) return [];
  const plain = structuredClone(tj);
  plain.model.ignore_merges = false;
  const m = new HF.Tokenizer(plain, config), out = [];
  for (const t of Object.keys(tj.model.vocab)) {
    const text = unsymbol(t);
    if (!same(m.encode(text, { add_special_tokens: false }).ids, a.encode(text, { add_special_tokens: false }).ids)) out.push(text, "Xin ch\u00e0o," + text + ".");
  }
  console.log(`ignore_merges changes the ids of ${out.length / 2} tokens' texts (kept, alone and in a sentence)`);
  return out;
}

// ---- decode ----
const n = Math.max(...Object.values(tj.model.vocab), ...addedIds) + 1;
const byteId = (x) => tj.model.vocab[[...SYMBOL].find(([, v]) => v === x)[0]] ?? tj.added_tokens.find((t) => [...SYMBOL].find(([, v]) => v === x)[0] === t.content)?.id;
const bytes = (...xs) => xs.map(byteId);
const seqs = [
  ...[...addedIds].map((id) => [id]),
  bytes(0xe4), bytes(0xe4, 0xb8), bytes(0xe4, 0xb8, 0xad), bytes(0xb8, 0xad), bytes(0xc0, 0x80), bytes(0xed, 0xa0, 0x80),
  bytes(0xf4, 0x90, 0x80, 0x80), bytes(0xf0, 0x9f, 0x98), bytes(0xf0, 0x9f, 0x98, 0x80), bytes(0xe2, 0x82, 0xac, 0x80),
  [...bytes(0xe4), [...addedIds][0], ...bytes(0xb8, 0xad)], [0], [n - 1],
];
// random sequences, a third with added tokens of more than one character (the ports decode
// DeepSeek's one-character byte symbols differently from the Rust library)
const longAdded = tj.added_tokens.filter((t) => [...t.content].length > 1).map((t) => t.id);
let x = 12345;
for (let i = 0; i < 150; i++) {
  const s = [];
  for (let k = 0; k <= i % 6; k++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s.push(i % 3 === 0 ? longAdded[x % longAdded.length] : x % n);
  }
  seqs.push(s);
}
for (const r of encodeRows.filter((r, i) => i % 25 === 0 && r.ids.length)) seqs.push(r.ids);
const decodeRows = [], skipRows = [];
for (const ids of seqs) {
  const opts = (skip) => ({ skip_special_tokens: skip, clean_up_tokenization_spaces: false });
  for (const skip of [false, true]) {
    if (skip && !ids.some((id) => addedIds.has(id))) continue;
    const da = a.decode(ids, opts(skip)), db = b.decode(ids, opts(skip));
    if (agree(skip ? "decode_skip_special" : "decode", ids, da, db, ref.decode(ids, skip))) (skip ? skipRows : decodeRows).push({ ids, text: da });
  }
}
write("decode.jsonl", decodeRows);
write("decode_skip_special.jsonl", skipRows);

// ---- what was left out ----
console.log(`left out (the implementations disagree): ${excluded.length}`);
for (const e of excluded) console.log(jsonLine(e));
