#!/usr/bin/env bash
# Fine-tune the shipped toy model on one CUDA GPU within a fixed wall-clock budget (a lent H100, a Colab GPU):
#   bash scripts/train_gpu.sh [MINUTES]    # default 7; the trained pipelines land in $DEST/run<i>.tar
# 1. renders VIDEOS training videos with every core and encodes them on the GPU (held-out combinations excluded);
# 2. times PROBE_STEPS steps of every learning rate in LRS, all running side by side on the one GPU;
# 3. trains them side by side again from INIT (the shipped weights), each with a cosine schedule sized to fill MINUTES.
# Environment: PYTHON, DEVICE (cuda), VIDEOS (32768), BATCH (512), LRS ("5e-4 1.5e-3"), SEED (3), WORKERS (nproc),
# PROBE_STEPS (60), ROOT (/tmp/toy-gpu), DEST ($OUT or $ROOT/out), INIT (data/models/toy: the weights fine-tuned),
# STEPS (unset: as many as fit in MINUTES; set: exactly that many steps, MINUTES then bounds nothing).
# Evaluate each run before shipping it (DEVELOPERS.md).
set -euo pipefail
MINUTES=${1:-7}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
VIDEOS=${VIDEOS:-32768}
BATCH=${BATCH:-512}
LRS=${LRS:-"5e-4 1.5e-3"}
SEED=${SEED:-3}
WORKERS=${WORKERS:-$(nproc)}
PROBE_STEPS=${PROBE_STEPS:-60}
ROOT=${ROOT:-/tmp/toy-gpu}
INIT=${INIT:-data/models/toy}
DEST=${DEST:-${OUT:-$ROOT/out}}
TRAIN=("$PY" -m dynvfx.lab.train --init-from "$INIT" --device "$DEVICE" --batch "$BATCH" --videos "$VIDEOS"
       --high-noise-share 0.5 --binding-weight 1 --text-binding-weight 0.05 --threads 2)
mkdir -p "$ROOT/lat" "$DEST"
if [ ! -f "$ROOT/lat/state.json" ]; then  # a second call with the same ROOT reuses the encoded videos
  cp -r data/models/toy/vae "$ROOT/lat/vae"
  echo '{"seconds": {}, "done": ["vae"]}' >"$ROOT/lat/state.json"
fi
"${TRAIN[@]}" --workdir "$ROOT/lat" --out "$ROOT/lat/unused" --workers "$WORKERS" --steps 0 --threads "$WORKERS"
encode_s=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds']['latents'])" "$ROOT/lat/state.json")
echo "encoded $VIDEOS videos in $encode_s s"

fresh_workdir() {  # a workdir that shares the encoded latents and starts at step 0
  rm -rf "$1"; mkdir -p "$1"
  ln -s "$ROOT"/lat/latents_*.pt "$ROOT/lat/vae" "$1/"
  echo "{\"seconds\": {\"latents\": $encode_s}, \"done\": [\"vae\", \"latents\"]}" >"$1/state.json"
}

i=0
for lr in $LRS; do
  fresh_workdir "$ROOT/probe$i"
  "${TRAIN[@]}" --workdir "$ROOT/probe$i" --out "$ROOT/probe$i/out" --lr "$lr" --seed "$SEED" \
    --steps "$PROBE_STEPS" --checkpoint-every 100000 >"$ROOT/probe$i.log" 2>&1 &
  i=$((i + 1))
done
wait
slowest=$("$PY" -c "import json,sys; print(max(json.load(open(f))['seconds']['dit'] for f in sys.argv[1:]))" \
  "$ROOT"/probe*/state.json)
if [ -n "${STEPS:-}" ]; then
  steps=$STEPS
  limit=()
  echo "$PROBE_STEPS steps side by side took $slowest s: training $steps steps (STEPS)"
else
  steps=$("$PY" -c "import sys; print(int(int(sys.argv[1]) / float(sys.argv[2]) * float(sys.argv[3]) * 60 * 0.93))" \
    "$PROBE_STEPS" "$slowest" "$MINUTES")
  limit=(--max-minutes "$("$PY" -c "import sys; print(float(sys.argv[1]) + 1)" "$MINUTES")")
  echo "$PROBE_STEPS steps side by side took $slowest s: $steps steps fit in $MINUTES min"
  if [ "$steps" -lt 1 ]; then
    echo "a budget of $MINUTES min fits no training step at this speed; give more minutes" >&2
    exit 1
  fi
fi

i=0
for lr in $LRS; do
  fresh_workdir "$ROOT/run$i"
  "${TRAIN[@]}" --workdir "$ROOT/run$i" --out "$ROOT/run$i/out" --lr "$lr" --seed "$SEED" --steps "$steps" \
    --checkpoint-every 500 "${limit[@]}" >"$ROOT/run$i.log" 2>&1 &
  i=$((i + 1))
done
wait
for d in "$ROOT"/run*/; do
  n=$(basename "$d")
  tail -c 2000 "$ROOT/$n.log" | tr '\r' '\n' | tail -n 3
  tar -C "$d/out" -cf "$DEST/$n.tar" transformer text_encoder training.json loss_log.csv
done
ls -la "$DEST"
