#!/usr/bin/env bash
# One call on a machine with a CUDA GPU: the gpu-marked tests, then the full-size benchmark and the
# memory-option estimates, all results in one JSON: $OUT/gpu_check.json (OUT defaults to ./gpu_check_out).
#
#   bash scripts/gpu_check.sh            # or: make gpu-check OUT=/some/dir
#
# Budget: under 8 minutes in all (TOTAL_S, default 465 s of phases). Each phase has its own timeout,
# cut further to what is left of the total, and its status is recorded, so a failing or slow phase
# never costs the others. Exit status: 0 only if every phase succeeded and every gpu test passed.
set -u
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
TOTAL_S="${TOTAL_S:-465}"
start_all=$(date +%s)

phase() {  # phase NAME TIMEOUT_S CMD...  -> $OUT/NAME.log, $OUT/NAME.status ("rc seconds")
    local name=$1 limit=$2
    shift 2
    local t0 left
    t0=$(date +%s)
    left=$(( TOTAL_S - (t0 - start_all) ))
    if [ "$left" -lt "$limit" ]; then limit=$left; fi
    if [ "$limit" -lt 5 ]; then echo "124 0" >"$OUT/$name.status"; echo "== $name: no time left"; return; fi
    echo "== $name (limit ${limit}s): $*"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "$rc $(( $(date +%s) - t0 ))" >"$OUT/$name.status"
    echo "   rc=$rc after $(( $(date +%s) - t0 )) s (log: $OUT/$name.log)"
    tail -n 5 "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/nvidia_smi.txt" 2>&1 || true
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" \
    >"$OUT/torch_cuda.txt" 2>&1 || {
    cat "$OUT/torch_cuda.txt"
    # GPU_CHECK_DRY_RUN=1 goes on without a GPU, to check this script itself (tests skip, bench fails)
    if [ "${GPU_CHECK_DRY_RUN:-0}" != 1 ]; then echo "no usable CUDA device: nothing to check"; exit 2; fi
}

# 1. the gpu-marked tests (inductor compilation included)
phase gpu_tests 180 "$PYTHON" -m pytest -v -m gpu tests/test_gpu.py -rA --junitxml="$OUT/gpu_tests.xml"
# 2. the full-size benchmark (SD1.5 size, random weights): 64 frames at 512², 25 steps, float16
phase bench 245 "$PYTHON" -m magicanimate.bench --config sd15 --size 512 --frames 64 --steps 25 \
    --dtype float16 --device cuda --json "$OUT/bench.json"
# 3. the estimated peak memory of each small-GPU option at that size (meta device, seconds)
phase bench_memory_options 30 "$PYTHON" -m magicanimate.bench --config sd15 --size 512 --frames 64 --steps 25 \
    --dtype float16 --device cuda --memory-options --json "$OUT/bench_memory_options.json"

"$PYTHON" - "$OUT" "$start_all" <<'PY'
import json, sys, time
import xml.etree.ElementTree as ET
from pathlib import Path

out, start = Path(sys.argv[1]), int(sys.argv[2])
def read(name):
    p = out / name
    return p.read_text().strip() if p.exists() else None
def load(name):
    p = out / name
    try:
        return json.loads(p.read_text())
    except Exception as exc:  # missing or partial: recorded, not fatal
        return {"error": f"{name}: {exc}"}
phases = {}
for name in ("gpu_tests", "bench", "bench_memory_options"):
    status = read(f"{name}.status")
    rc, seconds = (int(v) for v in status.split()) if status else (None, None)
    phases[name] = {"rc": rc, "seconds": seconds, "timed_out": rc in (124, 137),
                    "log_tail": (read(f"{name}.log") or "").splitlines()[-20:]}
tests = []
if (out / "gpu_tests.xml").exists():
    for case in ET.parse(out / "gpu_tests.xml").getroot().iter("testcase"):
        outcome = "passed"
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                detail = (node.get("message") or "")[:500]
                break
        else:
            detail = ""
        tests.append({"test": case.get("name"), "outcome": outcome, "seconds": float(case.get("time", 0)),
                      "detail": detail})
if not tests:  # no junit file (the phase was killed): the verbose log's per-test lines
    import re
    for name, outcome in re.findall(r"::(\w+) (PASSED|FAILED|SKIPPED|ERROR)", read("gpu_tests.log") or ""):
        tests.append({"test": name, "outcome": outcome.lower(), "seconds": None, "detail": "from the log"})
report = {"gpu": read("nvidia_smi.txt"), "torch_cuda": read("torch_cuda.txt"), "phases": phases, "tests": tests,
          "bench": load("bench.json"), "bench_memory_options": load("bench_memory_options.json"),
          "total_seconds": int(time.time()) - start}
(out / "gpu_check.json").write_text(json.dumps(report, indent=2))
print(f"wrote {out / 'gpu_check.json'}: " + ", ".join(f"{k} rc={v['rc']}" for k, v in phases.items()))
tests_ok = bool(tests) and all(t["outcome"] == "passed" for t in tests)  # a skip on a GPU machine is a failure
report["ok"] = tests_ok and all(v["rc"] == 0 for v in phases.values())
(out / "gpu_check.json").write_text(json.dumps(report, indent=2))
sys.exit(0 if report["ok"] else 1)
PY
