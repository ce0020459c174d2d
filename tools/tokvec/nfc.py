#!/usr/bin/python3
"""Texts for an NFC check and their NFC by Python's unicodedata; tools/tokvec/nfc.mjs keeps the rows
where ICU (Node's String.prototype.normalize) gives the same and writes nfc.jsonl.

    tools/tokvec/nfc.py > candidates.jsonl

Every code point of the Unicode version of Python's tables that NFC may touch (a canonical
decomposition, a combining class, the second of a composition, a Hangul jamo; one Hangul syllable
in 97, their rule being arithmetic) appears alone, decomposed and before a mark, marks also after
a letter and after a mark of another class; then seeded random runs of letters, marks of several
classes and jamo. Items are joined by spaces, 48 to a row."""
import json
import random
import sys
import unicodedata as ud


def main():
    cps = []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000 or ud.category(chr(cp)) == "Cn":
            continue
        d = ud.decomposition(chr(cp))
        if ud.combining(chr(cp)) or (d and not d.startswith("<")) or ud.normalize("NFD", chr(cp)) != chr(cp):
            cps.append(cp)
    seconds = sorted({ord(ud.normalize("NFD", chr(cp))[-1]) for cp in cps if len(ud.normalize("NFD", chr(cp))) > 1})
    cps = sorted(set(cps) | set(seconds) | set(range(0x1100, 0x1113)) | set(range(0x1161, 0x1176)) |
                 set(range(0x11A8, 0x11C3)) | {0xAC00, 0xAC01, 0xD7A3, 0xD7A4})
    cps = [cp for cp in cps if not 0xAC00 < cp < 0xD7A3 or cp % 97 == 0]  # syllables are arithmetic: a sample
    items = []
    for cp in cps:
        c = chr(cp)
        items += [c, ud.normalize("NFD", c), c + "\u0301"] + (["a" + c, "e\u0323" + c] if ud.combining(c) else [])
    r = random.Random(14)
    marks = [chr(cp) for cp in cps if ud.combining(chr(cp))]
    bases = list("aeiouAEIOUnsckg") + ["\u1100", "\u1161", "\u11a8", "\uac00", "\u0915", "\u05d0", "\u03b1", "\u3046"]
    for _ in range(2000):
        items.append("".join(r.choice(bases if r.random() < 0.4 else marks) for _ in range(r.randint(1, 6))))
    for i in range(0, len(items), 48):
        text = " ".join(items[i:i + 48])
        sys.stdout.write(json.dumps({"text": text, "nfc": ud.normalize("NFC", text)}) + "\n")
    sys.stderr.write("%d items, Unicode %s\n" % (len(items), ud.unidata_version))


if __name__ == "__main__":
    main()
