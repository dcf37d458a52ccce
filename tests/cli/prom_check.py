"""A strict parser of the Prometheus text exposition format (0.0.4), for the tests.

Reads the exposition on stdin; exits non-zero with the first problem found. Checks: every
line is a comment, HELP, TYPE or sample of the grammar; TYPE comes before the family's
samples and once; metric and label names are valid; values are floats; no series twice;
counters end in _total; histogram buckets are cumulative, end with le="+Inf", and
_count equals the +Inf bucket. Prints the samples as JSON ({"name{labels}": value}).
"""
import json
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(\{{(?:{LABEL}(?:,{LABEL})*)?,?\}})? (\S+)(?: (-?\d+))?$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def fail(msg):
    print(f"invalid exposition: {msg}", file=sys.stderr)
    sys.exit(1)


def value(text, line):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(text)
    except ValueError:
        fail(f"bad value {text!r} in {line!r}")


def main():
    text = sys.stdin.read()
    if not text.endswith("\n"):
        fail("does not end with a newline")
    types, seen, samples, helps = {}, set(), {}, set()
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            if len(parts) < 4 or not re.fullmatch(NAME, parts[2]) or parts[2] in helps:
                fail(f"bad or repeated HELP: {line!r}")
            helps.add(parts[2])
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or not re.fullmatch(NAME, parts[2]) or parts[3] not in TYPES:
                fail(f"bad TYPE: {line!r}")
            if parts[2] in types:
                fail(f"TYPE twice for {parts[2]}")
            if any(s.split("{")[0].startswith(parts[2]) for s in samples):
                fail(f"TYPE after samples of {parts[2]}")
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#") or line == "":
            fail(f"unexpected line {line!r}")
        m = SAMPLE.match(line)
        if not m:
            fail(f"not a sample: {line!r}")
        name, labels, val = m.group(1), m.group(2) or "", m.group(3)
        series = name + labels
        if series in seen:
            fail(f"series twice: {series}")
        seen.add(series)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        kind = types.get(name) or types.get(family)
        if kind is None:
            fail(f"sample before its TYPE: {line!r}")
        if kind == "counter" and not name.endswith("_total"):
            fail(f"counter without _total: {name}")
        samples[series] = value(val, line)
    for fam, kind in types.items():
        if kind != "histogram":
            continue
        buckets = [(k, v) for k, v in samples.items() if k.startswith(fam + "_bucket{")]
        if not buckets or 'le="+Inf"' not in buckets[-1][0]:
            fail(f"{fam}: buckets must end with le=\"+Inf\"")
        les = [float(re.search(r'le="([^"]+)"', k).group(1).replace("+Inf", "inf")) for k, _ in buckets]
        if les != sorted(les):
            fail(f"{fam}: buckets out of order")
        vals = [v for _, v in buckets]
        if any(b < a for a, b in zip(vals, vals[1:])):
            fail(f"{fam}: buckets not cumulative")
        if samples.get(fam + "_count") != vals[-1] or (fam + "_sum") not in samples:
            fail(f"{fam}: _count must equal the +Inf bucket, and _sum must exist")
    print(json.dumps(samples))


main()
