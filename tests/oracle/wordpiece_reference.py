#!/usr/bin/python3
"""An independent reference for BERT's tokenizer: the basic tokenizer and greedy WordPiece as BERT
publishes them (Devlin et al. 2019; google-research/bert tokenization.py), with the two behaviours
transformers' BertTokenizer adds (NFC before the whitespace split, and special tokens written in
the text kept whole, the rest lower-cased one character at a time). Written from those
descriptions with Python's own unicodedata, not from sinklab's C++.

Usage: wordpiece_reference.py VOCAB_TXT < request.json > ids.json
request: {"do_lower_case": bool, "strip_accents": null|bool, "tokenize_chinese_chars": bool,
          "texts": [str or [byte, ...], ...]}  (bytes are decoded as UTF-8, ill-formed ones as U+FFFD)
output:  {"ids": [[int, ...], ...]}  (no [CLS] / [SEP]: the tokens of each text alone)
"""
import json
import sys
import unicodedata

SPECIALS = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]
MAX_WORD_CHARS = 100


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    ranges = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
    return any(lo <= cp <= hi for lo, hi in ranges)


def basic_words(text, lower, strip, chinese):
    if lower:
        text = "".join(ch.lower() for ch in text)
    kept = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        if is_whitespace(ch):
            kept.append(" ")
        elif chinese and is_cjk(cp):
            kept.append(" " + ch + " ")
        else:
            kept.append(ch)
    text = unicodedata.normalize("NFC", "".join(kept))
    pieces = []
    for word in text.split():
        if lower:
            word = word.lower()
        if strip:
            word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if is_punctuation(ch):
                if current:
                    pieces.append(current)
                current = ""
                pieces.append(ch)
            else:
                current += ch
        if current:
            pieces.append(current)
    return " ".join(pieces).split()


def word_pieces(word, vocab, unk):
    if len(word) > MAX_WORD_CHARS:
        return [unk]
    out, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while end > start:
            piece = ("##" if start else "") + word[start:end]
            if piece in vocab:
                found = vocab[piece]
                break
            end -= 1
        if found is None:
            return [unk]
        out.append(found)
        start = end
    return out


def encode(text, vocab, lower, strip, chinese):
    ids, rest = [], text
    while rest:
        hits = [(rest.find(s), -len(s), s) for s in SPECIALS if s in vocab and rest.find(s) >= 0]
        if not hits:
            chunk, special, rest = rest, None, ""
        else:
            at, _, special = min(hits)
            chunk, rest = rest[:at], rest[at + len(special):]
        for word in basic_words(chunk, lower, strip, chinese):
            ids.extend(word_pieces(word, vocab, vocab["[UNK]"]))
        if special:
            ids.append(vocab[special])
    return ids


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        tokens = f.read().split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    vocab = {t: i for i, t in enumerate(tokens)}
    request = json.load(sys.stdin)
    lower = request["do_lower_case"]
    strip = lower if request.get("strip_accents") is None else request["strip_accents"]
    chinese = request.get("tokenize_chinese_chars", True)
    texts = [t if isinstance(t, str) else bytes(t).decode("utf-8", errors="replace") for t in request["texts"]]
    out = [encode(t, vocab, lower, strip, chinese) for t in texts]
    json.dump({"ids": out, "unicode": unicodedata.unidata_version}, sys.stdout)


if __name__ == "__main__":
    main()
