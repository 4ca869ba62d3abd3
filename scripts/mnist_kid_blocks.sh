# Sourced by scripts/iddpm_mnist.sh and scripts/cascade_mnist.sh: what both MNIST comparisons share. Expects ROOT
# (the run folder), REF_CONFIG (the config whose data the reference describes), N_SAMPLES, REF_IMAGES and LIMIT.
# Sets OUT (ROOT/results) and REF (the training images' Inception statistics), writes REF, the test images'
# statistics and kid_floor.json (their KID against REF) once, and defines the working-block helpers below.
export JAXGEN_DATA_ROOT="${JAXGEN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
# Every call compiles the same samplers and Inception network: keep XLA's compilations between them.
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$ROOT/xla_cache}"
OUT="$ROOT/results"
mkdir -p "$OUT"
START=$(date +%s)
# Seconds left of this call's LIMIT.
left() { echo $(( LIMIT - ($(date +%s) - START) )); }
# Ends the call (status 0) once LIMIT is reached: the same command continues.
stop_if_late() {
  if (( $(left) <= 0 )); then
    echo "this call reached its LIMIT of $LIMIT s; run the same command again to continue"
    exit 0
  fi
}
# train_variants CONFIG_FILE STEPS VARIANT...: trains each variant in ROOT/VARIANT for what is left of LIMIT.
train_variants() {
  local config="$1" steps="$2" variant status
  shift 2
  for variant in "$@"; do
    stop_if_late
    status=0
    timeout -s TERM -k 120 "$(left)" python main.py --config "$config:$variant" --workdir "$ROOT/$variant" \
      --config.training.num_steps="$steps" --mode train || status=$?
    if [[ "$status" -eq 124 ]]; then
      echo "training stopped at the LIMIT of $LIMIT s with a checkpoint; run the same command again to resume"
      exit 0
    elif [[ "$status" -ne 0 ]]; then
      exit "$status"
    fi
  done
}
REF="$OUT/reference_train$REF_IMAGES.npz"
_floor="$OUT/reference_test$N_SAMPLES.npz"
_stats() { python -m gen_runtime.sample_quality.reference_stats --config "$REF_CONFIG" "$@"; }
[[ -f "$REF" ]] || _stats --split train --max_images "$REF_IMAGES" --out "$REF"
[[ -f "$_floor" ]] || _stats --split test --max_images "$N_SAMPLES" --out "$_floor"
[[ -f "$OUT/kid_floor.json" ]] || _stats --compare "$REF" "$_floor" > "$OUT/kid_floor.json"
