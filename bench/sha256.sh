#!/bin/bash
# SHA-256 throughput of this build of vmsnap (README, "Signing"): one thread
# through mbedtls_sha256() over a buffer in memory, and sig_payload_digest()
# with 2 threads over a file in the page cache, each on the implementation
# vmsnap chooses and on the portable code (VMSNAP_SHA256=portable).
# Needs `make` first (links build/target's objects into bench/sha256_bench.c).
# usage: bench/sha256.sh [FILE]   (default: 1 GiB of random data in /var/tmp)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -x build/vmsnap ] || { echo "bench/sha256.sh: no build/vmsnap: run make first" >&2; exit 2; }
bin=$(mktemp /tmp/sha256_bench.XXXXXX) tmpfile=
trap 'rm -f "$bin" $tmpfile' EXIT
objs=$(ls build/target/src/*.o build/target/third/mbedtls/library/*.o | grep -v '/main\.o$')
# shellcheck disable=SC2086
musl-gcc -std=gnu11 -Os -Wall -Wextra -D_GNU_SOURCE -DMBEDTLS_CONFIG_FILE='"vmsnap_mbedtls.h"' \
	-Ibuild/include -Isrc -Idl/mbedtls/include -static -Wl,--gc-sections \
	-o "$bin" bench/sha256_bench.c $objs -pthread
file=${1:-}
if [ -z "$file" ]; then
	tmpfile=$(mktemp /var/tmp/sha256_bench.XXXXXX) file=$tmpfile
	head -c 1G /dev/urandom >"$file"
fi
cat "$file" >/dev/null # into the page cache
echo "# $(build/vmsnap version | tail -n 1) (chosen), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
for impl in chosen portable; do
	env=()
	[ $impl = portable ] && env=(VMSNAP_SHA256=portable)
	echo "## $impl"
	env "${env[@]}" "$bin" mem 256 3
	for rep in 1 2 3; do env "${env[@]}" "$bin" file "$file" 2; done
done
