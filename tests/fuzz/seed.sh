#!/bin/bash
# seed.sh: (re)makes the fuzz seeds in tests/fuzz/corpus/<target>/ from real
# inputs: boots the test guest once, saves v2, v3 and signed images and keeps
# their first 8 KiB (header + definition), plus one small whole image; the
# shipped configs and VM definitions; and QMP conversations recorded from
# QEMU for the restore and save sequences fuzz_qmp replays. Needs root and a
# built tree (make); takes about a minute. Seeds are a few KiB each.
. "$(dirname "$0")/../lib.sh"
set -e
C=$TOP/tests/fuzz/corpus
KEYS=$TOP/tests/fuzz/keys
mkdir -p "$C"/{header,conf,vmdef,qmp,inspect} "$KEYS"
# The test signing key (never a real one): fuzz_header checks signatures
# with its public half, so signed seeds reach ECDSA.
[ -f "$KEYS/fuzz.pem" ] || vs keygen "$KEYS/fuzz.pem" "$KEYS/fuzz.pub.pem" >/dev/null
sed "s|^trusted_keys.*|sign_key = $KEYS/fuzz.pem|" "$T/vmsnap.conf" >"$T/signed.conf"

start_guest vm1 64M 5 10 || { echo "seed.sh: the test guest did not boot" >&2; exit 1; }
vs save vm1 "$T/v2.img" --keep-running >/dev/null
vs save vm1 "$T/v3.img" --format 3 --keep-running >/dev/null
"$VMSNAP" --config "$T/signed.conf" save vm1 "$T/v2-signed.img" --keep-running >/dev/null
"$VMSNAP" --config "$T/signed.conf" save vm1 "$T/v3-signed.img" --format 3 --keep-running >/dev/null
for i in v2 v3 v2-signed v3-signed; do head -c 8192 "$T/$i.img" >"$C/header/$i-head"; done
# A whole image small enough to fuzz: 4 KiB of the v2 stream, no payload
# digest, unsigned, digests right: every check passes down to the definition.
python3 - "$T/v2.img" "$C/header/v2-small-whole" <<'PY'
import hashlib, struct, sys
b = bytearray(open(sys.argv[1], "rb").read(8192 + 4096))
struct.pack_into("<Q", b, 56, 4096)          # stream_length
struct.pack_into("<I", b, 76, 0)             # digest_chunk: no payload digest
b[272:304] = bytes(32)                       # payload digest
b[304:468] = bytes(164)                      # key id, sig_len, signature
b[4064:4096] = hashlib.sha256(b[:4064]).digest()
open(sys.argv[2], "wb").write(b)
PY
# inspect reads what restore reads first: the same seeds.
cp "$C"/header/v*-* "$C/inspect/"

cp "$TOP/rootfs-overlay/etc/vmsnap.conf" "$C/conf/rootfs-overlay.conf"
for f in "$TOP"/board/*/overlay/etc/vmsnap.conf; do
	cp "$f" "$C/conf/$(basename "$(dirname "$(dirname "$(dirname "$f")")")").conf"
done
sed "s|$T|/tmp/vmsnap-it|g; s|$TOP|/src/vmsnap|g" "$T/signed.conf" >"$C/conf/tests.conf"
printf '[vm web]\nimage = /dev/vdb\ninstant = yes\n[vm db.1]\ninstant = no\n' >>"$C/conf/tests.conf"

sed "s|$T|/tmp/vmsnap-it|g; s|$TOP|/src/vmsnap|g" "$T/vms/vm1.vm" >"$C/vmdef/test-guest.vm"
cp "$TOP/rootfs-overlay/etc/vmsnap/vms/example.vm.disabled" "$C/vmdef/example.vm"
for f in "$TOP"/board/*/overlay/etc/vmsnap/vms/*.vm; do cp "$f" "$C/vmdef/"; done

# QMP: fuzz_qmp runs a v3 restore, then a v2 save, on the same bytes; each
# recording answers one of them with ids vmsnap-1, vmsnap-2, ... in order.
rec() { python3 "$TOP/tests/fuzz/qmp_record.py" "$@"; }
incoming() { # a QEMU waiting for migrate-incoming on $T/rec.qmp
	local args=() opt val
	while read -r opt val; do
		case $opt in ''|'#'*) continue ;; esac
		args+=("$opt"); [ -n "$val" ] && args+=("$val")
	done <"$T/vms/vm1.vm"
	rm -f "$T/rec.qmp"
	qemu-system-x86_64 "${args[@]}" -S -incoming defer -daemonize -pidfile "$T/rec.pid" \
		-qmp "unix:$T/rec.qmp,server=on,wait=off"
}
restore_steps() { # IMAGE STREAM_OFFSET [STEP]: STEP is what vmsnap calls next (query-migrate after a failure)
	cat <<JSON
[{"execute":"qmp_capabilities"},
 {"execute":"query-migrate-capabilities"},
 {"execute":"migrate-set-capabilities","arguments":{"capabilities":[
   {"capability":"x-ignore-shared","state":false},{"capability":"events","state":true},
   {"capability":"multifd","state":true},{"capability":"mapped-ram","state":true}]}},
 {"execute":"migrate-set-parameters","arguments":{"multifd-channels":$(nproc),"direct-io":false}},
 {"execute":"add-fd","arguments":{"opaque":"vmsnap-image"},"fds":["$1"]},
 {"execute":"add-fd","arguments":{"fdset-id":0,"opaque":"vmsnap-image-direct"},"fds":["$1"]},
 {"execute":"migrate-incoming","arguments":{"uri":"file:/dev/fdset/0,offset=$2","exit-on-error":false},
  "wait_migration":true},
 ${3:+$3,}
 {"execute":"remove-fd","arguments":{"fdset-id":0}},
 {"execute":"cont"},
 {"execute":"quit"}]
JSON
}
# A v3 restore that completes; one that fails (a v2 stream read as mapped-ram).
incoming
rec "$T/rec.qmp" "$C/qmp/restore-v3" "$(restore_steps "$T/v3.img" "$(header_u64 "$T/v3.img" 48)")"
incoming
rec "$T/rec.qmp" "$C/qmp/restore-failed" \
	"$(restore_steps "$T/v2.img" "$(header_u64 "$T/v2.img" 48)" '{"execute":"query-migrate"}')"
# A v2 save of the running guest to /dev/null, then quit.
rec "$T/run/vm1.qmp" "$C/qmp/save-v2" '[{"execute":"qmp_capabilities"},
 {"execute":"query-migrate-capabilities"},
 {"execute":"migrate-set-capabilities","arguments":{"capabilities":[
   {"capability":"x-ignore-shared","state":false},{"capability":"events","state":true},
   {"capability":"multifd","state":false},{"capability":"mapped-ram","state":false}]}},
 {"execute":"migrate-set-parameters","arguments":{"max-bandwidth":1099511627776}},
 {"execute":"getfd","arguments":{"fdname":"vmsnap-stream"},"fds":["/dev/null"],"fd_mode":"w"},
 {"execute":"migrate","arguments":{"uri":"fd:vmsnap-stream"},"wait_migration":true},
 {"execute":"query-migrate"},
 {"execute":"quit"}]'
# The fuzzer's own finds stay out of here (build/fuzz/corpus); crash
# reproducers that became regressions are kept by name (tests/fuzz/README).
ls -l "$C"/*/ | sed "s|$TOP/||"
