#!/usr/bin/env bash
# The exact sittings that made models/sotu-llama-long, from random weights (tokenizer and
# architecture of models/sotu-llama). Each sitting resumes from the checkpoint the previous one
# stopped at, with the stage list as that sitting ran it: the list grew as the training monitors
# asked for it (models/sotu-llama-long/README.md tells why). Data order (numpy generator state) and
# optimizer state are in the checkpoint, so the sequence replays the run. About 65 minutes of
# training on 2 otherwise idle cores, plus the held-out evaluation on export.
#   bash tools/train-builtin/train-long.sh          (from the repository root, after npm ci)
# Stages are ctx:batch:steps[:boost]; "boost" stages draw BOOST_MIX (60% repeated random
# sequences), the others MIX (see train_retrieval.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
T="/usr/bin/python3 tools/train-builtin/train_retrieval.py"
A=128:32:200,128:8:1300
B=128:8:800:boost,128:8:75,128:8:1500:boost,128:8:500
$T --stages 128:32:1200,512:8:400,1024:4:400 --stop-at 200
$T --resume --stages $A,512:4:250,1024:2:250 --stop-at 1500
$T --resume --stages $A,128:8:800:boost,128:8:500,512:4:250,1024:2:250 --stop-at 2375
$T --resume --stages $A,$B,512:4:250,1024:2:250 --stop-at 3675
$T --resume --stages $A,$B,512:4:400,1024:2:600 --stop-at 5100
$T --resume --stages $A,$B,512:4:400,1024:2:1100 --decay-steps 800 "$@"
