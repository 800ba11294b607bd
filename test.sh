#!/bin/sh
# SPDX-License-Identifier: MIT
# Quick start, step 2: install what is missing, build under AddressSanitizer
# and UndefinedBehaviorSanitizer, and run the whole test suite in both builds.
set -eu
cd "$(dirname "$0")"
.ci/install-deps
# plain build first: the allocation-counting checks run there
[ -d build ] || meson setup build
ninja -C build
meson test -C build --print-errorlogs --num-processes 2 "$@"
[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --print-errorlogs --num-processes 2 "$@"
