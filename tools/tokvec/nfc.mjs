// nfc.mjs - keeps the rows of nfc.py's output where ICU's NFC (Node's String.prototype.normalize)
// equals Python's, and writes them as nfc.jsonl (\u escapes throughout).
//   tools/tokvec/nfc.py | node tools/tokvec/nfc.mjs > tests/data/tokenizer-qwen2/nfc.jsonl
import fs from "fs";
const rows = fs.readFileSync(0, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
let kept = 0;
for (const r of rows) {
  if (r.text.normalize("NFC") !== r.nfc) {
    console.error("ICU and Python differ: " + JSON.stringify(r.text));
    continue;
  }
  const esc = (s) => JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  process.stdout.write(`{"text":${esc(r.text)},"nfc":${esc(r.nfc)}}\n`);
  kept++;
}
console.error(`${kept} of ${rows.length} rows (ICU ${process.versions.icu}, Unicode ${process.versions.unicode})`);
