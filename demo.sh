#!/bin/sh
# SPDX-License-Identifier: MIT
# Quick start, step 1: install what is missing, build, and separate the
# bundled demo mixture (demo/mix.wav: two real recordings mixed by a 2x2
# matrix; see demo/ATTRIBUTION.md), then score it against demo/refs.
set -eu
cd "$(dirname "$0")"
.ci/install-deps
[ -d build ] || meson setup build --buildtype=release
ninja -C build
mkdir -p out/demo
./build/daemon/strebmd --backend file --input demo/mix.wav --output-dir out/demo
echo
./build/tests/bench/strebm-score demo/mix.wav demo/refs out/demo
echo
echo "Listen: out/demo/source_1.wav and out/demo/source_2.wav (the mixture: demo/mix.wav)"
