#!/usr/bin/env bash
# Self-test of the kvmkit test guest against Debian's QEMU on /dev/kvm (the
# reference VMM): boots both forms on pc, q35 and microvm and checks the report.
# Usage: qemu-selftest.sh BUILD_DIR   (BUILD_DIR holds testguest.bzImage/.elf)
# Each boot takes 1-8 s on a PVM host (SeaBIOS is most of it).
set -u
DIR=${1:?usage: $0 BUILD_DIR}
QEMU=${QEMU:-qemu-system-x86_64}
BZ=$DIR/testguest.bzImage
ELF=$DIR/testguest.elf
command -v "$QEMU" >/dev/null || { echo "SKIP: $QEMU not found"; exit 0; }
[ -w /dev/kvm ] || { echo "SKIP: /dev/kvm not usable"; exit 0; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
head -c 100000 /dev/urandom >"$TMP/initrd"
# zlib CRC32 of the file = the CRC32 in gzip's trailer
CRC=$(gzip -c "$TMP/initrd" | tail -c8 | head -c4 | od -An -tx4 | tr -d ' \n')

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; sed 's/^/     | /' "$OUT" | tail -40; }

# run NAME EXPECT-LINES... -- QEMU-ARGS...
run() {
	local name=$1; shift
	local expect=()
	while [ "$1" != "--" ]; do expect+=("$1"); shift; done
	shift
	OUT=$TMP/$name.log
	timeout 120 "$QEMU" -enable-kvm -nographic -no-reboot "$@" </dev/null 2>&1 |
		tr -d '\r' | grep -ao 'KT: .*' >"$OUT"
	local rc=${PIPESTATUS[0]}
	[ "$rc" = 0 ] || { bad "$name" "qemu exit status $rc (expected the guest to end the VM)"; return; }
	grep -q '^KT: DONE pass=[0-9]* fail=0 ' "$OUT" || { bad "$name" "DONE line missing or fail>0"; return; }
	local e
	for e in "${expect[@]}"; do
		grep -qxF -- "KT: $e" "$OUT" || { bad "$name" "missing line 'KT: $e'"; return; }
	done
	ok "$name"
}

run pc-bzimage "boot proto=bzimage16" "cmdline tests=all  x=1" "initrd size=100000 crc32=$CRC" \
	"acpi cpus=2" "smp started=1 expected=1" "PASS bootinfo" "PASS acpi" "PASS initrd" "PASS rtc" \
	"SKIP highmem no-ram-above-4g" "PASS uart_irq" "PASS smp" -- \
	-M pc -m 256 -smp 2 -kernel "$BZ" -initrd "$TMP/initrd" -append "tests=all  x=1"
run pc-pvh-5g "boot proto=pvh" "initrd size=100000 crc32=$CRC" "PASS highmem" "PASS smp" "PASS pagefault" -- \
	-M pc -m 5G -smp 2 -kernel "$ELF" -initrd "$TMP/initrd" -append "tests=all,pagefault"
run q35-reset "smp started=2 expected=2" "acpi cpus=3" \
	"end action=reset method=reset_reg space=1 addr=0xcf9 value=0xf" -- \
	-M q35 -m 256 -smp 3 -kernel "$BZ" -append "tests=acpi,smp end=reset"
run microvm-pvh "boot proto=pvh" "PASS rtc" "smp started=3 expected=3" "PASS uart_irq" -- \
	-M microvm,rtc=on -m 256 -smp 4 -kernel "$ELF" -initrd "$TMP/initrd" -append "x2apic=on"
run microvm-bzimage "boot proto=bzimage16" "initrd size=100000 crc32=$CRC" "SKIP rtc no-rtc" -- \
	-M microvm -m 256 -kernel "$BZ" -initrd "$TMP/initrd" -append "tests=all,-smp"
run bench-pio "bench start" "bench end" "PASS bench" -- \
	-M microvm -m 256 -kernel "$ELF" -append "bench=pio:1000:510"

# uart_rx: answer "ready-for-input" with a byte on the serial line
OUT=$TMP/uart_rx.log
coproc Q { timeout 60 "$QEMU" -enable-kvm -M microvm -m 256 -display none -monitor none -serial stdio \
	-no-reboot -kernel "$ELF" -append "tests=uart_rx rx_timeout=30" 2>/dev/null; }
: >"$OUT"
qpid=$Q_PID
exec {qin}<&"${Q[0]}" {qout}>&"${Q[1]}"
while IFS= read -r line <&"$qin"; do
	line=${line%$'\r'}
	case $line in *KT:*) echo "KT:${line#*KT:}" >>"$OUT" ;; esac
	case $line in *ready-for-input*) sleep 0.2; printf 'Q' >&"$qout" ;; esac
done
wait "$qpid" 2>/dev/null
exec {qin}<&- {qout}>&-
if grep -qxF 'KT: uart_rx byte=0x51 char=Q count=1' "$OUT" && grep -qxF 'KT: PASS uart_rx' "$OUT"; then
	ok uart_rx
else
	bad uart_rx "no byte received"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
