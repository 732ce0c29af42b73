#!/bin/sh
# Profile a short training run and gate CI on it (docs/check.md).
#
#   examples/ci/gate.sh                          # examples/train_cnn.py, budgets of perfscope.toml
#   examples/ci/gate.sh train.py --epochs 1      # your own short run
#   BASELINE=runs/main examples/ci/gate.sh       # also compare the step times to a baseline run
#
# Settings (environment): PERFSCOPE (the command), RUN_DIR (perfscope-runs/ci), CONFIG (the
# budgets, default perfscope.toml beside this file), BASELINE (a run directory), FORMAT (text,
# json, junit, github or markdown), STRICT=1 (an inconclusive comparison fails with exit 3).
# Exit codes are perfscope check's: 0 pass, 1 a budget, finding or regression failed, 2 a usage
# or input error, 3 inconclusive under STRICT=1.
set -u

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
perfscope=${PERFSCOPE:-perfscope}
run_dir=${RUN_DIR:-perfscope-runs/ci}
config=${CONFIG:-$here/perfscope.toml}
# The demo without its deliberate per-sample cost: a run that meets the budgets.
[ "$#" -gt 0 ] || set -- "$here/../train_cnn.py" --samples 960 --augment-ms 0

# 1. Profile. py-spy is off: no budget reads its stacks, and it needs ptrace rights in containers.
#    A script that fails still leaves a record, and the gate then fails on "run ended ok".
"$perfscope" run -q --no-pyspy -o "$run_dir" "$@"
ran=$?
if [ ! -f "$run_dir/record.json" ]; then
    echo "gate: no record in $run_dir (perfscope run exited $ran)" >&2
    exit 2
fi

# 2. Gate on the budgets, the findings and, when given, the baseline.
set -- "$run_dir" --config "$config" --format "${FORMAT:-text}"
if [ -n "${BASELINE:-}" ]; then set -- "$@" --baseline "$BASELINE"; fi
if [ "${STRICT:-0}" = 1 ]; then set -- "$@" --strict; fi
exec "$perfscope" check "$@"
