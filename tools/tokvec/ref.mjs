// ref.mjs - a from-scratch reading of Hugging Face tokenizers' (Rust) semantics for byte-level BPE
// tokenizer.json files, written for checking the golden vectors (not derived from the JavaScript
// ports): added tokens split off first (leftmost-longest; the normalized: false ones on the raw
// text, the others on the normalized text), normalizer (NFC or none), the pre-tokenizer Sequence
// (Split Isolated with Oniguruma regexes, Digits as Rust's char::is_numeric, ByteLevel without its
// regex), BPE by merge rank (ignore_merges first), and the ByteLevel decoder as the Rust code has
// it: a token whose characters are all byte symbols is those bytes, added tokens included.

// Oniguruma's \s: Unicode White_Space (JavaScript's \s adds U+FEFF and lacks U+0085)
const WS = "\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

function byteTable() {
  const bs = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const toChar = new Array(256), toByte = new Map();
  bs.forEach((b, i) => { toChar[b] = String.fromCodePoint(cs[i]); toByte.set(String.fromCodePoint(cs[i]), b); });
  return { toChar, toByte };
}
const BYTES = byteTable();

// Every code point Unicode's simple case folding makes equal to ch (Oniguruma's (?i) for the
// letters of a contraction group: s also matches U+017F, k U+212A).
function caseClass(ch) {
  const f = (c) => c.toLowerCase();
  const out = new Set([ch]);
  for (let cp = 0; cp < 0x10000; cp++) {
    const c = String.fromCodePoint(cp);
    if (cp >= 0xd800 && cp < 0xe000) continue;
    if (f(c) === f(ch) || c.toUpperCase() === ch.toUpperCase()) if ([...c.toLowerCase()].length === 1) out.add(c);
  }
  return out.size > 1 ? "[" + [...out].join("") + "]" : ch.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// An Oniguruma pattern as a JavaScript one (u flag): \s \S, $ (end of line: before \n or at the
// end), and (?i:...) groups of plain letters.
export function onigToJs(re) {
  let out = "", inClass = false;
  for (let i = 0; i < re.length; i++) {
    const c = re[i];
    if (c === "\\") {
      const n = re[i + 1];
      if (n === "s") out += inClass ? WS : "[" + WS + "]";
      else if (n === "S") {
        if (inClass) throw new Error("\\S inside a class");
        out += "[^" + WS + "]";
      } else out += c + n;
      i++;
    } else if (!inClass && re.startsWith("(?i:", i)) {
      let depth = 1, j = i + 4;
      for (; depth; j++) depth += re[j] === "(" ? 1 : re[j] === ")" ? -1 : 0;
      const body = re.slice(i + 4, j - 1);
      if (/[\\[\](){}*+?.^$]/.test(body)) throw new Error("(?i:) with more than letters: " + body);
      out += "(?:" + [...body].map((ch) => (/[A-Za-z]/.test(ch) ? caseClass(ch) : ch)).join("") + ")";
      i = j - 1;
    } else if (!inClass && c === "$") out += "(?=\\n|$)";
    else {
      if (c === "[" && !inClass) inClass = true;
      else if (c === "]" && inClass) inClass = false;
      out += c;
    }
  }
  return new RegExp(out, "gu");
}

function utf8(s) { return new TextEncoder().encode(s); }

export class Ref {
  constructor(tj) {
    this.vocab = new Map(Object.entries(tj.model.vocab));
    this.ignoreMerges = !!tj.model.ignore_merges;
    this.ranks = new Map();
    tj.model.merges.forEach((m, i) => {
      const [a, b] = typeof m === "string" ? m.split(" ") : m;
      if (!this.ranks.has(a + " " + b)) this.ranks.set(a + " " + b, i);
    });
    this.added = tj.added_tokens.map((a) => ({ ...a }));
    this.idToToken = new Map();
    for (const [t, i] of this.vocab) if (!this.idToToken.has(i)) this.idToToken.set(i, t);
    for (const a of this.added) this.idToToken.set(a.id, a.content);
    this.nfc = normalizerNfc(tj.normalizer);
    this.steps = preSteps(tj.pre_tokenizer);
  }

  // Leftmost-longest matches of the given added tokens: [{text, token}] with token null for the gaps.
  splitAdded(text, tokens) {
    const out = [];
    let gap = 0;
    for (let i = 0; i < text.length; ) {
      let best = null;
      for (const a of tokens) if (a.content && text.startsWith(a.content, i) && (!best || a.content.length > best.content.length)) best = a;
      if (!best) { i++; continue; }
      if (i > gap) out.push({ text: text.slice(gap, i), token: null });
      out.push({ text: best.content, token: best });
      i += best.content.length;
      gap = i;
    }
    if (gap < text.length) out.push({ text: text.slice(gap), token: null });
    return out;
  }

  // The text's parts: added tokens, and normalized stretches between them.
  parts(text) {
    const raw = this.added.filter((a) => !a.normalized), norm = this.added.filter((a) => a.normalized);
    const out = [];
    for (const p of this.splitAdded(text, raw)) {
      if (p.token) { out.push(p); continue; }
      const t = this.nfc ? p.text.normalize("NFC") : p.text;
      for (const q of this.splitAdded(t, norm)) out.push(q);
    }
    return out;
  }

  pretokenize(text) {
    let pieces = [text];
    for (const step of this.steps) {
      const next = [];
      for (const p of pieces) {
        let last = 0;
        for (const m of p.matchAll(step)) {
          if (m.index > last) next.push(p.slice(last, m.index));
          if (m[0].length) next.push(m[0]);
          last = m.index + m[0].length;
        }
        if (last < p.length) next.push(p.slice(last));
      }
      pieces = next;
    }
    return pieces;
  }

  bpe(piece) {
    const sym = [...utf8(piece)].map((b) => BYTES.toChar[b]);
    const whole = sym.join("");
    if (this.ignoreMerges && this.vocab.has(whole)) return [this.vocab.get(whole)];
    for (;;) {
      let best = -1, rank = Infinity;
      for (let i = 0; i + 1 < sym.length; i++) {
        const r = this.ranks.get(sym[i] + " " + sym[i + 1]);
        if (r !== undefined && r < rank) { rank = r; best = i; }
      }
      if (best < 0) break;
      sym.splice(best, 2, sym[best] + sym[best + 1]);
    }
    return sym.map((s) => {
      if (!this.vocab.has(s)) throw new Error("no token for " + JSON.stringify(s));
      return this.vocab.get(s);
    });
  }

  encode(text) {
    const ids = [];
    for (const p of this.parts(text)) {
      if (p.token) ids.push(p.token.id);
      else for (const piece of this.pretokenize(p.text)) ids.push(...this.bpe(piece));
    }
    return ids;
  }

  // The pieces ds_pretokenize gives: added tokens whole, the rest pre-tokenized after normalizing.
  pieces(text) {
    const out = [];
    for (const p of this.parts(text)) out.push(...(p.token ? [p.text] : this.pretokenize(p.text)));
    return out;
  }

  decode(ids, skipSpecial) {
    const bytes = [];
    const special = new Set(this.added.filter((a) => a.special).map((a) => a.id));
    for (const id of ids) {
      if (skipSpecial && special.has(id)) continue;
      const t = this.idToToken.get(id);
      if (t === undefined) continue;
      const chars = [...t];
      if (chars.every((c) => BYTES.toByte.has(c))) for (const c of chars) bytes.push(BYTES.toByte.get(c));
      else bytes.push(...utf8(t));
    }
    return new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(new Uint8Array(bytes));
  }
}

function normalizerNfc(n) {
  if (!n || (n.type === "Sequence" && n.normalizers.length === 0)) return false;
  if (n.type === "NFC") return true;
  if (n.type === "Sequence" && n.normalizers.length === 1) return normalizerNfc(n.normalizers[0]);
  throw new Error("normalizer " + JSON.stringify(n));
}

function preSteps(pre) {
  const steps = [];
  for (const s of pre.type === "Sequence" ? pre.pretokenizers : [pre]) {
    if (s.type === "Split") {
      if (s.behavior !== "Isolated" || s.invert) throw new Error("Split " + JSON.stringify(s));
      steps.push(onigToJs(s.pattern.Regex));
    } else if (s.type === "Digits") steps.push(s.individual_digits ? /\p{N}/gu : /\p{N}+/gu);
    else if (s.type === "ByteLevel") {
      if (s.use_regex || s.add_prefix_space) throw new Error("ByteLevel " + JSON.stringify(s));
    } else throw new Error("pre-tokenizer " + s.type);
  }
  return steps;
}
