#!/usr/bin/env bash
# The exact sequence of sittings that made models/sotu-llama-long (see its README for why each
# phase was added). Each line resumes from the checkpoint the previous one stopped at, with the
# arguments that sitting ran with; the data order (numpy PCG64 state) and optimizer state are in
# the checkpoint, so the sequence reproduces the run. About 85 minutes of training on 2 cores.
#   bash tools/train-builtin/train-long.sh          (from the repository root, after npm ci)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
T="$PY tools/train-builtin/train_long.py"
$T --steps 900 --short-steps 300 --stop-at 75
$T --resume --steps 750 --short-steps 250 --stop-at 150
$T --resume --steps 650 --short-steps 200 --mix2-from 1000000000 --stop-at 225
C="--short-steps 200 --mix2-from 225"
$T --resume --steps 650 $C --stop-at 325
$T --resume --steps 900 $C --p3-from 325 --p3-to 800 --p4-from 1000000000 --stop-at 450
C="$C --p3-from 325 --p3-to 450 --p4-from 450 --p4-ctx 256"
$T --resume --steps 1370 $C --p4-to 1250 --p5-from 1000000000 --stop-at 600
C="$C --p4-to 600 --p5-from 600 --p5-ctx 128 --p5-batch 32 --p5-lr 1.5e-3"
$T --resume --steps 2200 $C --p5-to 2100 --p6-from 1000000000 --stop-at 750
C="$C --p5-to 750 --p6-from 750 --p6-batch 8 --p6-lr 2e-3"
$T --resume --steps 6000 $C --p6-to 5800 --stop-at 3175
$T --resume --steps 12000 $C --p6-to 11800 --p7-from 3175 --p7-lr 4e-3 --stop-at 3975
$T --resume --steps 12000 $C --p6-to 11800 --p7-from 3175 --p7-lr 4e-3 --p8-from 3975 --p8-to 11000 --p8-lr 2e-3 --stop-at 4825
$T --resume --steps 5075 $C --p6-to 5075 --p7-from 3175 --p7-lr 4e-3 --p8-from 3975 --p8-to 5075 --p8-lr 2e-3 --p9-from 4825 --p9-lr 1e-3
