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

# virtio (opt-in checks): disks in $TMP, QEMU's modern-only virtio-pci devices
VD="-device virtio-blk-pci,disable-legacy=on"
head -c 4194304 /dev/urandom >"$TMP/disk0.img"
head -c 1048576 /dev/urandom >"$TMP/disk1.img"
crc_of() { head -c "$2" "$1" | gzip -c | tail -c8 | head -c4 | od -An -tx4 | tr -d ' \n'; }
DCRC=$(crc_of "$TMP/disk0.img" 32768)
ROCRC=$(crc_of "$TMP/disk1.img" 32768)
run virtio-pc "blk read start=0 count=64 crc32=$DCRC" "blk write sectors=64 crc32=75a5e68d" \
	"blk flush status=0" "blk getid status=0 len=21 serial=KTSERIAL7" "vcon port=0 bytes=14 result=done" \
	"PASS pci" "PASS blk" "PASS blk_read" "PASS blk_rw" "PASS blk_flush" "PASS blk_getid" "PASS rng" "PASS vcon" -- \
	-M pc -m 256 -nodefaults -serial stdio -kernel "$BZ" \
	-append "tests=pci,blk,blk_read,blk_rw,blk_flush,blk_getid,rng,vcon" \
	-drive file="$TMP/disk0.img",format=raw,if=none,id=d0,cache=none $VD,drive=d0,serial=KTSERIAL7 \
	-device virtio-rng-pci,disable-legacy=on -device virtio-serial-pci,disable-legacy=on \
	-chardev file,id=vc0,path="$TMP/vcon.txt" -device virtconsole,chardev=vc0
# the disk holds what the guest wrote, and the console what it sent
if [ "$(crc_of "$TMP/disk0.img" 32768)" = 75a5e68d ] && grep -qx 'KT-VCON-HELLO' "$TMP/vcon.txt" 2>/dev/null; then
	ok virtio-pc-host-side
else
	OUT=/dev/null
	bad virtio-pc-host-side "disk pattern or vcon output missing"
fi
run virtio-q35-msix "pci cf8=1 mcfg=0xb0000000 cfg=ecam" "blk msix read=ok irqs=1" "PASS blk_discard" \
	"PASS blk_zeroes" "PASS blk_inflight" "PASS blk_hostile" \
	"blk_hostile loop result=device-needs-reset good=ok-after-reset" -- \
	-M q35 -m 256 -nodefaults -serial stdio -kernel "$ELF" \
	-append "tests=pci,blk,blk_discard,blk_zeroes,blk_inflight,blk_hostile pci_cfg=ecam blk_irq=msix vq_feat=indirect,event_idx blk_start=100" \
	-drive file="$TMP/disk0.img",format=raw,if=none,id=d0,cache=none $VD,drive=d0
run virtio-microvm-ro "pci cf8=0 mcfg=0xe0000000 cfg=ecam" "blk read start=0 count=64 crc32=$ROCRC" \
	"blk readonly write-status=1 unchanged=1" "PASS pci" "PASS blk_readonly" -- \
	-M microvm,pcie=on -m 256 -nodefaults -serial stdio -kernel "$ELF" \
	-append "tests=pci,blk,blk_read,blk_readonly pci_ecam=0xe0000000 blk_dev=1" \
	-drive file="$TMP/disk0.img",format=raw,if=none,id=d0,cache=none $VD,drive=d0 \
	-drive file="$TMP/disk1.img",format=raw,if=none,id=d1,readonly=on $VD,drive=d1
run bench-blk "bench start" "bench end" "bench bytes=819200 requests=200 errors=0 kicks=200" "PASS bench" -- \
	-M microvm,pcie=on -m 256 -nodefaults -serial stdio -kernel "$ELF" \
	-append "bench=blk:randread:200:8 pci_ecam=0xe0000000" \
	-drive file="$TMP/disk0.img",format=raw,if=none,id=d0,cache=none $VD,drive=d0

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
