// texts.mjs - the test texts of the golden vectors: DeepSeek-V3's fixture texts, llama.cpp's
// tokenizer test inputs, texts aimed at each pre-tokenizer's rules, and seeded random mixes.
import fs from "fs";

// Normalization (NFC): decomposed and composed forms, singletons, exclusions, reordering, Hangul.
const NFC = [
  "e\u0301", "cafe\u0301", "caf\u00e9", "\u212b", "A\u030a", "\u00c5", "\u2126", "\u212a", "\u1e9b\u0323",
  "q\u0307\u0323", "q\u0323\u0307", "A\u0328\u0301", "e\u0323\u0302", "e\u0302\u0323", "\u1ec7",
  "\u1100\u1161\u11a8", "\u1100\u1161", "\uac00\u11a8", "\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165",
  "\uf900\uf901", "\u0958\u0959", "\u0344", "\u0f73", "Tie\u0302\u0301ng Vie\u0323\u0302t", "Ti\u1ebfng Vi\u1ec7t",
  "\u1f71\u1f73", "\u1f7d \u03ce", "\u1fbe \u03b9", "\u1fd3 \u0390", "\u1fdb \u038a", "x\u0301\u0301",
  "\u0301abc", " \u0301", "a\u0300\u0316\u0301", "\u05d0\u05bc\u05b8", "\u05d0\u05b8\u05bc", "\u09c7\u09be",
  "\u0b47\u0b3e", "\u1025\u102e", "s\u0323\u0307", "\u1e69", "n\u0303o", "Zu\u0308rich", "\u00fcber u\u0308ber",
  "\u0041\u030a\u0301", "\u2000\u2001", "\u3099\u304b\u3099", "\u304b\u3099", "\u30cf\u309a", "\u0627\u0653",
  "\u0915\u093c", "\u2adc", "\u2add\u0338", "<\u0338 >\u0338 =\u0338", "\ufb2c", "\u{1d15e}",
];

// Contractions: the (?i:...) group (U+017F long s folds to s), curly apostrophes, stray quotes.
const CONTRACTIONS = [
  "it's it'S IT'S it\u017fs it'\u017f", "I'M we'LL you'Ve they'RE x'D don'T", "don\u2019t", "'ll've'd", "'",
  "''s", "a'b'c", " 'll", "'s's", "O'Neil's", "rock'n'roll", "'\u212a'k",
];

// Digits: groups of 1-3 (Llama 3), one by one (Qwen, DeepSeek LLM / Coder), other scripts' digits.
const DIGITS = [
  "1234567890", "12 345 6789", "\u0661\u0662\u0663\u0664\u0665", "\u0967\u0968\u0969", "\u00bd\u00be",
  "\u216b", "\u2460\u2461", "\u0663.\u0661\u0664", "3.14159", "1,000,000", "x\u00b2+y\u00b3", "0xDEADBEEF",
  "\u0661\u0662\u0663abc", "version 2.0.1-rc3", "+49 (0)30 123456", "2024-01-31T12:34:56Z", "\uff11\uff12\uff13",
  "\u3007\u4e00\u4e8c", "12345678901234567890123456789012345678901234567890",
];

// Whitespace: runs, non-ASCII spaces, line breaks, trailing spaces (deepseek-llm's \s+$).
const SPACES = [
  "a  b", "a\u00a0b", "a\u3000b", "a\u2009b", "  \n  ", "\t\t\n", "x \n\n y", "hello   ", "   ", "\r\n\r\n",
  "a\u0085b", "a\ufeffb", "line1\nline2\r\nline3\rline4", "\n\n\n", " \t \u00a0 ", "end.\n", "a\u200bb",
  "\u2028\u2029", "tab\there", "  leading", "trailing  \n", "  \u3000", "  \u3000\u3000x", "a  \u3001",
];

// Scripts and symbols: the DeepSeek LLM letter class and its CJK/Hangul range, kana, emoji.
const SCRIPTS = [
  "\u4f60\u597d\u4e16\u754c", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8", "\u30ab\u30bf\u30ab\u30ca",
  "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "\u4e2d\u6587English\u6df7\u5408", "\uff26\uff55\uff4c\uff4c",
  "\u9fa6\u9fa5", "\u3400", "\u{20000}", "\u1f80\u1f81\u1fb4", "\u1f60\u1f7d", "\u1fd0\u1fd3", "\u1fd6\u1fdb",
  "\u1fbe", "\u2102\u2115\u211a\u211d", "\u2126\u2128\u212a\u212b\u212c\u212d", "\ua640\ua680", "\u13f8\u13a0",
  "\u1c90\u1c91", "\u{10400}\u{10428}", "\u{1e900}\u{1e922}", "\u0531\u0562\u0563", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
  "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645", "\u0928\u092e\u0938\u094d\u0924\u0947",
  "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35", "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8", "a\u2014b\u2026c\u2192d",
  "\u2122\u20ac\u00a3\u00a5", "\u00abquote\u00bb \u201cdouble\u201d \u2018single\u2019", "\u00bfQu\u00e9? \u00a1S\u00ed!",
  "\u{1f44d}\u{1f3fd}", "\u{1f468}\u200d\u{1f469}\u200d\u{1f467}", "\u{1f1fa}\u{1f1f8}", "\u2764\ufe0f",
  "this is \u{1f999}.cpp", "\u00df\u1e9e", "\u0130stanbul \u0131", "\ufb00\ufb01", "\u02bcokina",
];

// Added-token look-alikes and the byte-symbol added tokens of DeepSeek LLM / Coder (U+00F8 ...).
const LETTERS = [
  "\u00fcber Gr\u00f6\u00dfe", "s\u00f8ren", "\u00ffes", "\u00f7", "\u00c0b \u00c1nimo", "\u00feorn \u00fdes \u00f9n \u00f5",
  "caf\u00e9 \u00fc", "\u00fc", "\u00fc\u00fc", "a\u00fcb", "\u00c3\u00bc", "na\u00efve r\u00e9sum\u00e9",
];

// Code and markup.
const CODE = [
  "#include <stdio.h>\nint main(void) { return 0; }\n", "def f(x):\n    return x**2  # square\n",
  "a+=1;b-=2;c*=3", "x == y != z && w || !v", "http://example.com/a?b=c&d=e#frag", "C:\\path\\to\\file.txt",
  "```python\nprint('hi')\n```", "{\"key\": [1, 2.5, null, true], \"k2\": \"v\"}", "<div class=\"x\">&amp;</div>",
  "$5 + 100% = \u20ac6", "foo(bar)[baz]{qux}", "  ...  ", "SELECT * FROM t WHERE a <> 'b';", "x => x.y?.z ?? 0",
  "/* comment */ // line", "#!/bin/sh\nset -eu\n", "tabs\tand  spaces\t \n", "@decorator\nclass A: pass",
];

const ADDED = {
  qwen2: ["<|im_start|>user\nhi<|im_end|>\n", "<think>\nok\n</think>", "<|endoftext|>", "<|im_start|", "<tool_call>{}</tool_call>",
    " <|im_end|> ", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"],
  llama3: ["<|begin_of_text|>Hi<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>",
    "<|reserved_special_token_5|>", "<|begin_of_text", " <|eot_id|> ", "<|python_tag|>x"],
  "deepseek-llm": ["<\uff5cbegin\u2581of\u2581sentence\uff5c>Hi", "<\uff5cend\u2581of\u2581sentence\uff5c>", "<|User|>"],
  "deepseek-coder": ["<\uff5cbegin\u2581of\u2581sentence\uff5c>def", "<\uff5cfim\u2581begin\uff5c>a<\uff5cfim\u2581hole\uff5c>b<\uff5cfim\u2581end\uff5c>",
    "<|EOT|>", "<pad>", "<|User|>hi<|Assistant|>"],
};

// A deterministic generator (xorshift) so that the random texts are the same on every run.
function rng(seed) {
  let x = BigInt(seed);
  return () => {
    x ^= (x << 13n) & 0xffffffffffffffffn;
    x ^= x >> 7n;
    x ^= (x << 17n) & 0xffffffffffffffffn;
    return Number(x % 1000000007n);
  };
}

const POOLS = [
  "abcxyzABCXYZ", "  \t\n\r", "0123456789", "'sStLld", ".,;:!?-_()[]{}<>/\\\"#$%&*+=@^`|~", "\u00e9\u00fc\u00f8\u00df\u00c5\u00f1",
  "\u0300\u0301\u0308\u0323\u0327\u0338\u05b8\u05bc", "\u4e00\u4e2d\u6587\u3042\u30a2\u30fc", "\u1100\u1161\u11a8\uac00\ud55c",
  "\u00a0\u3000\u2009\u200b\u0085", "\u0661\u0967\u00bd\u2460\uff11", "\u03b1\u1f7d\u2126\u212a\u017f",
];

function randomTexts(seed, n, extra) {
  const r = rng(seed), out = [];
  const pools = POOLS.map((p) => [...p]).concat(extra.length ? [extra] : []);
  for (let i = 0; i < n; i++) {
    let t = "";
    const len = 1 + (r() % 40);
    for (let k = 0; k < len; k++) {
      const p = pools[r() % pools.length];
      t += p[r() % p.length];
    }
    out.push(t);
  }
  return out;
}

function readJsonl(f) {
  return fs.readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

// family: qwen2 | llama3 | deepseek-llm | deepseek-coder
export function texts(family, repo, llamaCpp, extraWords) {
  const v3 = readJsonl(repo + "/tests/data/tokenizer-deepseek-v3/encode.jsonl").map((r) => r.text);
  const inp = fs.readFileSync(llamaCpp + "/models/ggml-vocab-deepseek-llm.gguf.inp", "utf8").split("\n__ggml_vocab_test__\n");
  const added = ADDED[family];
  const all = [...v3, ...inp, ...NFC, ...CONTRACTIONS, ...DIGITS, ...SPACES, ...SCRIPTS, ...LETTERS, ...CODE, ...added,
    ...extraWords, ...randomTexts(family.length * 7919 + 17, 120, added.join("").split(/(?=<)/))];
  return [...new Set(all)];
}
