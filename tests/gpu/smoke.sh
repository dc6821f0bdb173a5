#!/usr/bin/env bash
# GPU smoke test: run the real exporter over NVML on this machine and check its
# /metrics (tests/gpu/smoke_check.py).  Needs an NVIDIA GPU and driver; works
# offline with a bare python3 when the dependencies (prometheus_client, pynvml,
# yaml) are importable or reachable through GPUCOST_SMOKE_PYTHONPATH.
#
#   tests/gpu/smoke.sh                       # exits 0 when every check passes
#
# Environment:
#   GPUCOST_SMOKE_PYTHON      interpreter (default: python3)
#   GPUCOST_SMOKE_PYTHONPATH  extra sys.path entries holding the dependencies
#   GPUCOST_SMOKE_BACKEND     nvml (default) or simulated (to try this script without a GPU)
#   GPUCOST_SMOKE_SCENARIO    scenario file for the simulated backend
#   GPUCOST_SMOKE_LOAD_SECONDS  seconds of matmul load when torch or cupy is importable (default 20)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${GPUCOST_SMOKE_PYTHON:-python3}"
BACKEND="${GPUCOST_SMOKE_BACKEND:-nvml}"
SCENARIO="${GPUCOST_SMOKE_SCENARIO:-$REPO/tests/fixtures/scenarios/eight_gpus_static.yaml}"
LOAD_SECONDS="${GPUCOST_SMOKE_LOAD_SECONDS:-20}"
WORK="$(mktemp -d -t gpucost-smoke.XXXXXX)"
EXPORTER_PID=""
LOAD_PID=""

cleanup() {
  [[ -n "$LOAD_PID" ]] && kill "$LOAD_PID" 2>/dev/null || true
  [[ -n "$EXPORTER_PID" ]] && kill "$EXPORTER_PID" 2>/dev/null || true
  [[ -n "$EXPORTER_PID" ]] && wait "$EXPORTER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf 'smoke: %s\n' "$*"; }

export PYTHONPATH="${GPUCOST_SMOKE_PYTHONPATH:+$GPUCOST_SMOKE_PYTHONPATH:}$REPO/exporter${PYTHONPATH:+:$PYTHONPATH}"
DEPS_IMPORT="import prometheus_client, yaml; import pynvml"
if ! "$PYTHON" -c "$DEPS_IMPORT" 2>/dev/null; then
  say "dependencies not importable; trying pip install --target (needs an index or wheels in .whl/)"
  PIP_ARGS=(--quiet --disable-pip-version-check --target "$WORK/site")
  if [[ -d "$REPO/.whl" ]]; then PIP_ARGS+=(--no-index --find-links "$REPO/.whl"); fi
  if "$PYTHON" -m pip install "${PIP_ARGS[@]}" prometheus-client nvidia-ml-py pyyaml >"$WORK/pip.log" 2>&1; then
    export PYTHONPATH="$PYTHONPATH:$WORK/site"
  fi
  if ! "$PYTHON" -c "$DEPS_IMPORT"; then
    say "FAIL: cannot import prometheus_client, yaml and pynvml; set GPUCOST_SMOKE_PYTHONPATH"
    tail -5 "$WORK/pip.log" 2>/dev/null || true
    exit 2
  fi
fi

PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT/metrics"
ARGS=(--nvml.backend="$BACKEND" --web.listen-address="127.0.0.1:$PORT"
      --state.file="$WORK/state.json" --sample.interval=1s)
if [[ "$BACKEND" == simulated ]]; then ARGS+=(--simulate.scenario="$SCENARIO"); fi
say "starting exporter ($BACKEND) on 127.0.0.1:$PORT"
"$PYTHON" -m gpucost.cli.exporter "${ARGS[@]}" >"$WORK/exporter.log" 2>&1 &
EXPORTER_PID=$!

# Ready when /metrics lists a device and the sampler has completed a tick.
if ! "$PYTHON" - "$URL" <<'PY'
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        body = urllib.request.urlopen(url, timeout=2).read().decode()
        if "gpucost_gpu_info{" in body and "gpucost_gpu_cost_usd_total{" in body:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(1)
PY
then
  say "FAIL: exporter did not serve GPU metrics within 60 s; its log:"
  tail -40 "$WORK/exporter.log"
  exit 1
fi

if [[ "$BACKEND" == nvml ]] && "$PYTHON" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  say "running ${LOAD_SECONDS}s of torch matmuls"
  "$PYTHON" - "$LOAD_SECONDS" >"$WORK/load.log" 2>&1 <<'PY' &
import sys, time, torch
a = torch.randn(8192, 8192, device="cuda"); b = torch.randn(8192, 8192, device="cuda")
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    a @ b
    torch.cuda.synchronize()
PY
  LOAD_PID=$!
elif [[ "$BACKEND" == nvml ]] && "$PYTHON" -c "import cupy" 2>/dev/null; then
  say "running ${LOAD_SECONDS}s of cupy matmuls"
  "$PYTHON" - "$LOAD_SECONDS" >"$WORK/load.log" 2>&1 <<'PY' &
import sys, time, cupy
a = cupy.random.rand(8192, 8192, dtype=cupy.float32); b = cupy.random.rand(8192, 8192, dtype=cupy.float32)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    a @ b
    cupy.cuda.Device().synchronize()
PY
  LOAD_PID=$!
else
  say "no torch or cupy: checking an idle GPU"
fi
sleep 2

STATUS=0
timeout 120 "$PYTHON" "$REPO/tests/gpu/smoke_check.py" --url "$URL" --interval 5 || STATUS=$?
if [[ "$STATUS" != 0 ]]; then
  say "exporter log (last 30 lines):"
  tail -30 "$WORK/exporter.log"
fi
exit "$STATUS"
