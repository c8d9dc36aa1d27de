#!/usr/bin/env bash
# The instruction-count gate: runs the gungraun benchmark
# `benches/benches/instructions.rs` under callgrind and compares each
# benchmark's instruction count (callgrind's `Ir`, one run of the benchmark
# function) with its bound in `benches/instructions-bounds.txt`.
#
#   bash benches/check-instructions.sh            # check (what CI runs)
#   bash benches/check-instructions.sh --update   # rewrite the bounds from this run
#
# It fails (exit 1) when
#   - a count is above its bound: the hot path got slower; find out why, and
#     only if the cost is intended raise the bound (`--update`, or by hand);
#   - a count is below LOWER_PCT (70%) of its bound: the hot path got cheaper,
#     and a bound that loose would let the next regression through, so lower
#     the bound (`--update`) and commit it with the change that earned it;
#   - a benchmark in the bounds file is missing from the run, or a benchmark in
#     the run has no bound.
# `--update` writes every bound as the measured count plus MARGIN_PCT (5%),
# rounded up; review the diff like code.
#
# Counts are deterministic for one build of one toolchain with one valgrind:
# two runs on the same machine give the same numbers. A new rustc, a changed
# dependency or another valgrind can move them a little, which is what the
# margin absorbs.
#
# What it installs when missing (CI starts from a fresh machine): valgrind
# (apt-get), and gungraun-runner at exactly the version of the `gungraun`
# library in Cargo.lock (cargo install --locked; the runner refuses to run a
# benchmark built against another version).
set -euo pipefail
cd "$(dirname "$0")/.."

BOUNDS=benches/instructions-bounds.txt
MARGIN_PCT=5
LOWER_PCT=70

update=false
case "${1:-}" in
    "") ;;
    --update) update=true ;;
    *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

say() { printf '\n== %s\n' "$*"; }

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if ! command -v valgrind >/dev/null; then
    say "installing valgrind"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind
fi
if ! command -v python3 >/dev/null; then
    say "installing python3"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y python3
fi

# The runner must be the same version as the library the benchmark links.
want=$(awk '/^name = "gungraun"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [[ -z "$want" ]]; then
    echo "error: no gungraun package in Cargo.lock" >&2
    exit 1
fi
have=$(gungraun-runner --version 2>/dev/null | awk '{ print $NF }' || true)
if [[ "$have" != "$want" ]]; then
    say "installing gungraun-runner $want (found: ${have:-none})"
    cargo install gungraun-runner --version "$want" --locked
fi

# A fresh output directory each run: no summary of a removed benchmark, and no
# comparison with an earlier run.
home=$(realpath -m "${CARGO_TARGET_DIR:-target}/gungraun-gate")
rm -rf "$home"

say "gungraun benchmark (valgrind $(valgrind --version), gungraun-runner $want)"
GUNGRAUN_HOME="$home" GUNGRAUN_SAVE_SUMMARY=json \
    cargo bench -p breakerbox-benches --bench instructions --locked

say "instruction counts against $BOUNDS"
python3 - "$home" "$BOUNDS" "$MARGIN_PCT" "$LOWER_PCT" "$update" <<'PY'
import json, math, pathlib, sys

home, bounds_path, margin_pct, lower_pct, update = sys.argv[1:]
margin_pct, lower_pct, update = int(margin_pct), int(lower_pct), update == "true"

# Measured: one summary.json per benchmark (schema version 7 in gungraun 0.20).
measured = {}
for path in sorted(pathlib.Path(home).rglob("summary.json")):
    summary = json.loads(path.read_text())
    if summary.get("version") != "7":
        sys.exit(f"error: {path}: summary schema version {summary.get('version')!r}, this script reads 7")
    name = summary["function_name"] + (f"::{summary['id']}" if summary.get("id") else "")
    callgrind = [p for p in summary["profiles"] if p["tool"] == "Callgrind"]
    if len(callgrind) != 1:
        sys.exit(f"error: {path}: expected one Callgrind profile, found {len(callgrind)}")
    ir = callgrind[0]["data"]["total"]["metrics"]["Ir"]["values"]["new"]
    if name in measured:
        sys.exit(f"error: two benchmarks named {name}")
    measured[name] = int(ir)
if not measured:
    sys.exit(f"error: no summary.json under {home}: did the benchmark run?")

# Bounds: `name max_instructions` a line; `#` starts a comment.
lines = pathlib.Path(bounds_path).read_text().splitlines()
bounds = {}
for number, line in enumerate(lines, 1):
    fields = line.split("#", 1)[0].split()
    if not fields:
        continue
    if len(fields) != 2 or not fields[1].isdigit():
        sys.exit(f"error: {bounds_path}:{number}: expected `name max_instructions`, got {line!r}")
    bounds[fields[0]] = int(fields[1])

if update:
    kept = [line for line in lines if not line.split("#", 1)[0].strip()]
    while kept and not kept[-1].strip():
        kept.pop()
    width = max(map(len, measured))
    rows = [f"{name:<{width}}  {math.ceil(ir * (100 + margin_pct) / 100)}" for name, ir in sorted(measured.items())]
    pathlib.Path(bounds_path).write_text("\n".join(kept + [""] + rows) + "\n")
    for name, ir in sorted(measured.items()):
        print(f"{name}: measured {ir}, bound {bounds.get(name, '(none)')} -> {math.ceil(ir * (100 + margin_pct) / 100)}")
    print(f"wrote {bounds_path}: review and commit it")
    sys.exit(0)

failed = False
rows = []
for name in sorted(set(bounds) | set(measured)):
    ir, bound = measured.get(name), bounds.get(name)
    if ir is None:
        verdict, failed = "FAIL: missing from the run", True
    elif bound is None:
        verdict, failed = f"FAIL: no bound in {bounds_path}", True
    elif ir > bound:
        verdict, failed = f"FAIL: {100 * ir / bound - 100:.1f}% over the bound", True
    elif ir * 100 < bound * lower_pct:
        verdict, failed = f"FAIL: under {lower_pct}% of the bound; lower the bound", True
    else:
        verdict = f"ok ({100 * ir / bound:.1f}% of the bound)"
    rows.append((name, "-" if ir is None else str(ir), "-" if bound is None else str(bound), verdict))

header = ("benchmark", "measured Ir", "bound", "verdict")
widths = [max(len(row[i]) for row in rows + [header]) for i in range(3)]
for row in [header] + rows:
    print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}")
failures = sum(1 for row in rows if row[3].startswith("FAIL"))
if failed:
    print(f"\ninstruction-count gate FAILED.\n"
          f"- Over its bound: a regression. Find its cause; raise the bound only if the cost is intended.\n"
          f"- Under {lower_pct}% of its bound: the bound is stale. Lower it, so the next regression is caught.\n"
          f"- Missing from the run, or no bound: a benchmark was renamed, added or removed; fix {bounds_path}.\n"
          f"`bash benches/check-instructions.sh --update` rewrites every bound as measured + {margin_pct}%;"
          f" commit it with the change that moved the counts.")
print(f"instruction counts: {len(rows) - failures} passed, {failures} failed")
sys.exit(1 if failed else 0)
PY
