#!/usr/bin/env python3
"""Writes N emails into a Maildir for import/IMAP benchmarks: the fixture
emails repeated, each copy with its own Message-ID and its own order and
tracking numbers (so every copy is a distinct email about distinct orders).

usage: gen-corpus.py FIXTURE_DIR OUT_MAILDIR N
"""
import os, re, sys

src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = []
for root, _, names in os.walk(src):
    for name in sorted(names):
        if name.endswith(".eml"):
            with open(os.path.join(root, name), "rb") as f:
                files.append(f.read())
if not files:
    sys.exit("no .eml files under " + src)
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(out, sub), exist_ok=True)

ORDER = re.compile(rb"(?<![0-9])(8|3|9)([0-9]{15})(?![0-9])")
LP = re.compile(rb"LP([0-9]{14})")
MID = re.compile(rb"^Message-ID:.*$", re.M | re.I)

for i in range(n):
    raw = files[i % len(files)]
    copy = i // len(files)
    raw = MID.sub(b"Message-ID: <bench-%d@aliwatch.test>" % i, raw, count=1)
    if b"Message-ID:" not in raw[:4096]:
        raw = b"Message-ID: <bench-%d@aliwatch.test>\r\n" % i + raw
    raw = ORDER.sub(lambda m: m.group(1) + b"%015d" % ((int(m.group(2)) + copy * 7919) % 10**15), raw)
    raw = LP.sub(lambda m: b"LP%014d" % ((int(m.group(1)) + copy * 104729) % 10**14), raw)
    with open(os.path.join(out, "cur", "%08d.bench:2," % i), "wb") as f:
        f.write(raw)
