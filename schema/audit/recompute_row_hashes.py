#!/usr/bin/env python3
"""Recompute every row hash of an Isthmus history export, outside Postgres.

Usage:
    isthmus audit export --format json --config member.toml > log.jsonl
    python3 recompute_row_hashes.py log.jsonl      (or the lines on standard input)

This file shares no code with the relayer or the database. It follows the rule in
docs/schema.md ("Hash chain"): it rebuilds each row's canonical bytes from the
exported fields, renders `evidence` as Postgres renders jsonb, and hashes with
SHA-256. It then checks two things: every `row_hash`, and that each row's
`prev_hash` is the previous row's `row_hash`. Row 1 must have 32 zero bytes as its
`prev_hash`. An export of a time range starts later, so its first `prev_hash` is
taken as given.

Exit status: 0 when every row matches, 1 when a row does not (each is named),
2 when the input is not an export.
"""

import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal

DOMAIN = b"isthmus.lifecycle_log.v1"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ZERO_HASH = bytes(32)
SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def jsonb_string(text):
    """A JSON string as Postgres writes it: the short escapes, \\u00xx for the other
    control characters, every other character as itself (UTF-8)."""
    out = ['"']
    for ch in text:
        if ch in SHORT_ESCAPES:
            out.append(SHORT_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jsonb_text(value):
    """`value::text` of a jsonb value. Object keys are ordered by the length of their
    UTF-8 bytes, then bytewise. Separators are ", " between members and ": " after a
    key. Numbers are written in their decimal text."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
        return "{" + ", ".join(jsonb_string(k) + ": " + jsonb_text(value[k]) for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, str):
        return jsonb_string(value)
    raise ValueError("not a JSON value: %r" % (value,))


def length_prefixed(text):
    data = text.encode("utf-8")
    return len(data).to_bytes(4, "big") + data


def hex_bytes(text, size):
    data = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    if len(data) != size:
        raise ValueError("expected %d bytes, got %d" % (size, len(data)))
    return data


def row_bytes(row):
    created = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
    micros = (created - EPOCH) // timedelta(microseconds=1)
    message = row["message_id"]
    return (
        DOMAIN
        + int(row["seq"]).to_bytes(8, "big", signed=True)
        + hex_bytes(row["prev_hash"], 32)
        + (b"\x00" if message is None else b"\x01" + hex_bytes(message, 32))
        + length_prefixed(row["event"])
        + length_prefixed(row["actor"])
        + micros.to_bytes(8, "big", signed=True)
        + length_prefixed(jsonb_text(row["evidence"]))
    )


def main(argv):
    source = open(argv[1], encoding="utf-8") if len(argv) > 1 else sys.stdin
    rows = []
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line, parse_float=Decimal))
        except ValueError as e:
            print("line %d is not JSON: %s" % (number, e), file=sys.stderr)
            return 2
    if not rows:
        print("no rows: is this `isthmus audit export --format json`?", file=sys.stderr)
        return 2
    rows.sort(key=lambda r: int(r["seq"]))
    problems = []
    previous = None
    for row in rows:
        seq = int(row["seq"])
        try:
            recomputed = hashlib.sha256(row_bytes(row)).digest()
            stated = hex_bytes(row["row_hash"], 32)
            prev = hex_bytes(row["prev_hash"], 32)
        except (KeyError, ValueError) as e:
            print("row %d is not an export row: %s" % (seq, e), file=sys.stderr)
            return 2
        if recomputed != stated:
            problems.append("row %d: row_hash 0x%s, recomputed 0x%s" % (seq, stated.hex(), recomputed.hex()))
        if previous is not None and int(previous["seq"]) + 1 == seq:
            if prev != hex_bytes(previous["row_hash"], 32):
                problems.append("row %d: prev_hash is not row %d's row_hash" % (seq, seq - 1))
        elif previous is not None:
            problems.append("row %d follows row %s: rows are missing" % (seq, previous["seq"]))
        elif seq == 1 and prev != ZERO_HASH:
            problems.append("row 1: prev_hash is not 32 zero bytes")
        previous = row
    first, last = int(rows[0]["seq"]), int(rows[-1]["seq"])
    if problems:
        for p in problems:
            print(p)
        print("%d problem(s) in %d rows (seq %d..%d)" % (len(problems), len(rows), first, last))
        return 1
    print("%d rows (seq %d..%d): every row_hash recomputed and equal, every link checked" % (len(rows), first, last))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
