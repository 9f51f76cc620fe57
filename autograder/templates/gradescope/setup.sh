#!/usr/bin/env bash
# Gradescope image set-up: runs once when the autograder image is built.
# The autograder zip holds this file, run_autograder and the course repository as course/.
set -euo pipefail
# bubblewrap: `autograder grade` runs student code in its sandbox (no network, read-only system)
apt-get update -q && apt-get install -y -q python3.11 python3.11-venv bubblewrap
python3.11 -m venv /autograder/venv
/autograder/venv/bin/pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
/autograder/venv/bin/pip install -q -e /autograder/source/course
# Build the tiny grading models and warm the datasets cache while the network is still there.
HF_HUB_OFFLINE=1 /autograder/venv/bin/python -c "
from autograder.course.models import tiny_model_dir
for kind in ('distilbert-base', 'bert-base', 'distilbert-classifier', 'nli'):
    tiny_model_dir(kind)
"
