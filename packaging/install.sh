#!/bin/sh
# Install the operator into a fresh virtual environment: first the locked
# dependencies (every hash checked, wheels only), then our own wheel without
# resolving anything else. The Dockerfile runs this script, and
# tests/ship/test_image.py replays it, so the two cannot drift apart.
#
# usage: install.sh VENV REQUIREMENTS WHEEL_DIR      (PYTHON picks the interpreter)
set -eu
venv=$1
requirements=$2
wheels=$3
python=${PYTHON:-/usr/bin/python3.11}

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check \
    --require-hashes --only-binary=:all: -r "$requirements"
"$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check \
    --no-deps "$wheels"/imagestream_trigger-*.whl
# OpenShift runs the container with an arbitrary UID in group 0: group 0 must be
# able to read everything, and nobody needs to write here at run time.
chgrp -R 0 "$venv" 2>/dev/null || true
chmod -R g+rX,go-w "$venv"
"$venv/bin/imagestream-trigger" --version
