#!/usr/bin/env bash
# Builds kvmkit's default guest: a minimal Linux kernel from Debian's
# linux-source-6.1 (config guest/linux/kvmkit.config merged onto tinyconfig,
# patches guest/linux/patches/*.patch) and a busybox initramfs
# (guest/initramfs/ + /bin/busybox from busybox-static + the project's small
# tools, guest/tools/*.c, built static into /usr/bin).
#
# usage: scripts/build-guest.sh [--stock]
#
#   (default)  build the kernel; outputs in $KVMKIT_CACHE/guest/:
#                vmlinux         ELF with the PVH entry note (direct boot)
#                bzImage         Linux boot protocol image (gzip)
#                initramfs.cpio  uncompressed newc cpio
#                cmdline         recommended base kernel command line
#   --stock    no kernel build: install Debian's linux-image-cloud-amd64 and
#              copy its kernel to $KVMKIT_CACHE/guest/stock/bzImage (for hosts
#              with VT-x/AMD-V; it does not run under PVM's emulator), plus
#              the same initramfs.cpio and stock/cmdline.
#
# KVMKIT_CACHE defaults to /var/cache/kvmkit.  KVMKIT_BUILD_CACHE (default
# $KVMKIT_CACHE/build) holds the kernel build trees, keyed by the kernel's
# inputs: several caches (one per checkout, say) can share it and build the
# kernel once.  Nothing is written to the source tree.  Everything is keyed by
# a hash of the inputs: when the outputs for the current inputs exist, the
# script only prints their paths.
# See guest/README.md.
set -euo pipefail
export LC_ALL=C
trap 'echo "build-guest: error: command failed at line $LINENO (exit $?)" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/scripts/build-guest.sh"
CACHE=${KVMKIT_CACHE:-/var/cache/kvmkit}
OUT="$CACHE/guest"
BUILD=${KVMKIT_BUILD_CACHE:-$CACHE/build}
SRC_PKG=linux-source-6.1
SRC_TAR=/usr/src/linux-source-6.1.tar.xz
BUSYBOX=/bin/busybox
CONFIG="$ROOT/guest/linux/kvmkit.config"
PATCH_DIR="$ROOT/guest/linux/patches"
INITRAMFS_DIR="$ROOT/guest/initramfs"
TOOLS_DIR="$ROOT/guest/tools"
# Recommended base command line for the built kernel.  noxsave/clearcpuid keep
# the kernel off instructions KVM's emulator lacks (PVM hosts: CPUID set by
# the VMM does not reach the guest there); kvmkit_pvm=1 enables the kernel
# patch (harmless on hardware KVM); panic=-1 turns a guest panic into a reset
# (a VMM run with "no reboot" then ends at once instead of hanging).
CMDLINE="console=ttyS0 noxsave clearcpuid=popcnt,smap,rdtscp,erms,fsrm kvmkit_pvm=1 panic=-1 quiet"
STOCK_CMDLINE="console=ttyS0 panic=-1 quiet"

STOCK=0
for arg in "$@"; do
  case "$arg" in
    --stock) STOCK=1 ;;
    -h|--help) sed -n '2,25p' "$SELF"; exit 0 ;;
    *) echo "build-guest: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "build-guest: $*"; }
die() { echo "build-guest: error: $*" >&2; exit 1; }

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }

shopt -s nullglob
PATCHES=("$PATCH_DIR"/*.patch)
TOOLS=("$TOOLS_DIR"/*.c)
shopt -u nullglob

# --- keys --------------------------------------------------------------------
# kernel key: what the kernel build depends on (its build dir is named by it)
kernel_key() {
  {
    echo "linux-source $(pkg_version "$SRC_PKG")"
    gcc --version 2>/dev/null | head -n1 || true
    echo "config"; cat "$CONFIG"
    for p in "${PATCHES[@]}"; do echo "patch ${p##*/}"; cat "$p"; done
  } | sha256sum | cut -c1-16
}
# initramfs key: the files, their modes and busybox
initramfs_key() {
  {
    echo "busybox $(pkg_version busybox-static)"
    (cd "$INITRAMFS_DIR" && find . -print0 | sort -z | xargs -0 stat -c '%n %A' &&
       find . -type f -print0 | sort -z | xargs -0 sha256sum)
    gcc --version 2>/dev/null | head -n1 || true
    for t in "${TOOLS[@]}"; do echo "tool ${t##*/}"; cat "$t"; done
  } | sha256sum | cut -c1-16
}
script_key() { sha256sum "$SELF" | cut -c1-16; }

if [ "$STOCK" = 1 ]; then
  KEY="stock-$(initramfs_key)-$(script_key)"
  STAMP="$OUT/stock/KEY"
  OUTPUTS=("$OUT/stock/bzImage" "$OUT/initramfs.cpio" "$OUT/stock/cmdline")
else
  KKEY=$(kernel_key)
  KEY="$KKEY-$(initramfs_key)-$(script_key)"
  STAMP="$OUT/KEY"
  OUTPUTS=("$OUT/vmlinux" "$OUT/bzImage" "$OUT/initramfs.cpio" "$OUT/cmdline")
fi

print_outputs() {
  for f in "${OUTPUTS[@]}"; do echo "$f"; done
}

up_to_date() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] || return 1
  for f in "${OUTPUTS[@]}"; do [ -s "$f" ] || return 1; done
}

if up_to_date; then
  print_outputs
  exit 0
fi

mkdir -p "$OUT" "$BUILD"
exec 9>"$BUILD/.build-guest.lock"
flock 9                      # one build at a time per build cache; re-check after waiting
if up_to_date; then
  print_outputs
  exit 0
fi

# --- prerequisites -----------------------------------------------------------
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "$1 not found (run scripts/install-deps.sh)"; }
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (package busybox-static; run scripts/install-deps.sh)"
file_is_static() { ! grep -q "interpreter" <(readelf -l "$1" 2>/dev/null); }
need_cmd readelf
file_is_static "$BUSYBOX" || die "$BUSYBOX is not statically linked (need busybox-static)"
need_cmd gcc
[ -f "$SRC_TAR" ] || die "$SRC_TAR not found (package $SRC_PKG; run scripts/install-deps.sh)"

# --- initramfs ---------------------------------------------------------------
# gen_init_cpio (from the kernel source) writes root-owned files and device
# nodes without needing root or mknod, with fixed timestamps.
GEN_INIT_CPIO="$BUILD/tools/gen_init_cpio-$(pkg_version "$SRC_PKG")"
build_gen_init_cpio() {
  [ -x "$GEN_INIT_CPIO" ] && return 0
  mkdir -p "$BUILD/tools"
  local src=${1:-}
  if [ -z "$src" ]; then
    local tmp; tmp=$(mktemp -d "$BUILD/tools/src.XXXXXX")
    tar -xJf "$SRC_TAR" -C "$tmp" --strip-components=1 --wildcards '*/usr/gen_init_cpio.c'
    src="$tmp/usr/gen_init_cpio.c"
  fi
  gcc -O2 -o "$GEN_INIT_CPIO.tmp" "$src"
  mv "$GEN_INIT_CPIO.tmp" "$GEN_INIT_CPIO"
  [ -z "${tmp:-}" ] || rm -rf "$tmp"
}

# guest/tools/NAME.c -> /usr/bin/NAME, static (the initramfs has no libc)
build_tools() {
  local t name
  mkdir -p "$OUT/tools"
  for t in "${TOOLS[@]}"; do
    name=${t##*/}; name=${name%.c}
    gcc -static -O2 -Wall -o "$OUT/tools/$name.tmp" "$t" || die "guest tool $t does not build"
    mv "$OUT/tools/$name.tmp" "$OUT/tools/$name"
  done
}

STD_DIRS="/bin /sbin /usr /usr/bin /usr/sbin /dev /proc /sys /run /etc /root /mnt /var"
build_initramfs() {
  local list="$OUT/initramfs.list" d f mode
  {
    for d in $STD_DIRS; do
      echo "dir $d 0755 0 0"
    done
    echo "dir /tmp 1777 0 0"
    echo "nod /dev/console 0600 0 0 c 5 1"
    echo "nod /dev/null 0666 0 0 c 1 3"
    echo "slink /var/run /run 0777 0 0"
    echo "file /bin/busybox $BUSYBOX 0755 0 0"
    "$BUSYBOX" --list-full | sort | while read -r f; do
      case "$f" in bin/busybox|linuxrc) continue ;; esac
      echo "slink /$f /bin/busybox 0777 0 0"
    done
    for t in "${TOOLS[@]}"; do
      t=${t##*/}; t=${t%.c}
      echo "file /usr/bin/$t $OUT/tools/$t 0755 0 0"
    done
    # the project's files; they win over busybox links of the same name
    (cd "$INITRAMFS_DIR" && find . -mindepth 1 | sort) | while read -r f; do
      f=${f#./}
      case " $STD_DIRS " in *" /$f "*) continue ;; esac
      if [ -L "$INITRAMFS_DIR/$f" ]; then
        echo "slink /$f $(readlink "$INITRAMFS_DIR/$f") 0777 0 0"
      elif [ -d "$INITRAMFS_DIR/$f" ]; then
        echo "dir /$f 0755 0 0"
      else
        if [ -x "$INITRAMFS_DIR/$f" ]; then mode=0755; else mode=0644; fi
        echo "file /$f $INITRAMFS_DIR/$f $mode 0 0"
      fi
    done
  } > "$list"
  [ -x "$INITRAMFS_DIR/init" ] || die "$INITRAMFS_DIR/init missing or not executable"
  build_tools
  "$GEN_INIT_CPIO" -t 0 "$list" > "$OUT/initramfs.cpio.tmp"
  mv "$OUT/initramfs.cpio.tmp" "$OUT/initramfs.cpio"
  log "initramfs: $(stat -c %s "$OUT/initramfs.cpio") bytes"
}

# --- stock kernel ------------------------------------------------------------
if [ "$STOCK" = 1 ]; then
  newest_stock() { { ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null || true; } | sort -V | tail -n1; }
  K=$(newest_stock)
  if [ -z "$K" ]; then
    [ "$(id -u)" = 0 ] || die "need root to install linux-image-cloud-amd64"
    log "installing linux-image-cloud-amd64"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq linux-image-cloud-amd64 >/dev/null ||
      { apt-get update -qq && apt-get install -y -qq linux-image-cloud-amd64 >/dev/null; } ||
      die "apt-get install linux-image-cloud-amd64 failed"
    K=$(newest_stock)
    [ -n "$K" ] || die "no /boot/vmlinuz-*-cloud-amd64 after installing linux-image-cloud-amd64"
  fi
  mkdir -p "$OUT/stock"
  cp "$K" "$OUT/stock/bzImage.tmp" && mv "$OUT/stock/bzImage.tmp" "$OUT/stock/bzImage"
  echo "$STOCK_CMDLINE" > "$OUT/stock/cmdline"
  log "stock kernel: $K"
  build_gen_init_cpio
  build_initramfs
  echo "$KEY" > "$STAMP"
  print_outputs
  exit 0
fi

# --- kernel ------------------------------------------------------------------
KDIR="$BUILD/linux-$KKEY"
KLOG="$KDIR/build.log"

prepare_tree() {
  [ -f "$KDIR/.kvmkit-prepared" ] && return 0
  rm -rf "$KDIR"
  mkdir -p "$KDIR"
  log "extracting $SRC_TAR into $KDIR"
  tar -xJf "$SRC_TAR" -C "$KDIR" --strip-components=1
  local p
  for p in "${PATCHES[@]}"; do
    log "applying ${p##*/}"
    patch -d "$KDIR" -p1 --forward --quiet < "$p" || die "patch ${p##*/} does not apply"
  done
  log "configuring: tinyconfig + ${CONFIG#"$ROOT"/}"
  {
    make -C "$KDIR" tinyconfig &&
    (cd "$KDIR" && scripts/kconfig/merge_config.sh -m .config "$CONFIG") &&
    make -C "$KDIR" olddefconfig
  } > "$KDIR/config.log" 2>&1 || { tail -n 30 "$KDIR/config.log" >&2; die "kernel configuration failed"; }
  check_config
  touch "$KDIR/.kvmkit-prepared"
}

# Every option the fragment sets must be in .config exactly as asked:
# olddefconfig silently drops what has unmet dependencies.
check_config() {
  local bad=0 line opt
  while IFS= read -r line; do
    case "$line" in
      "# CONFIG_"*" is not set")
        opt=${line#"# "}; opt=${opt%% *}
        if grep -q "^$opt=" "$KDIR/.config"; then
          echo "build-guest: config: want '$line', got '$(grep "^$opt=" "$KDIR/.config")'" >&2; bad=1
        fi ;;
      CONFIG_*=*)
        if ! grep -qxF -- "$line" "$KDIR/.config"; then
          opt=${line%%=*}
          echo "build-guest: config: want '$line', got '$(grep -E "^$opt=|^# $opt is not set" "$KDIR/.config" || echo unset)'" >&2; bad=1
        fi ;;
    esac
  done < "$CONFIG"
  [ "$bad" = 0 ] || die "kernel config check failed (see above; $CONFIG)"
}

prepare_tree
check_config

# The stamp is the kernel key: editing this script (say, the initramfs part)
# does not re-run make on the kernel.
if [ -f "$KDIR/.kvmkit-built" ] && [ "$(cat "$KDIR/.kvmkit-built")" = "$KKEY" ] &&
   [ -s "$KDIR/vmlinux" ] && [ -s "$KDIR/arch/x86/boot/bzImage" ]; then
  log "kernel: up to date in $KDIR"
else
  JOBS=$(nproc)
  log "kernel: make -j$JOBS bzImage in $KDIR (log: $KLOG)"
  START=$(date +%s)
  if ! nice -n 10 make -C "$KDIR" -j"$JOBS" bzImage > "$KLOG" 2>&1; then
    echo "build-guest: kernel build failed; errors:" >&2
    grep -E "error:|Error [0-9]+|undefined reference|\*\*\*" "$KLOG" | head -n 40 >&2 || true
    echo "--- last lines of $KLOG:" >&2
    tail -n 20 "$KLOG" >&2
    exit 1
  fi
  WARN=$(grep -c "warning:" "$KLOG" || true)
  log "kernel: built in $(( $(date +%s) - START )) s, $WARN compiler warnings"
  echo "$KKEY" > "$KDIR/.kvmkit-built"
fi

readelf -n "$KDIR/vmlinux" | grep -A1 "^ *Xen" | grep -q "0x00000012" ||
  die "vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); is CONFIG_PVH set?"

for f in vmlinux arch/x86/boot/bzImage .config; do
  b=${f##*/}; [ "$b" = .config ] && b=config
  cp "$KDIR/$f" "$OUT/$b.tmp" && mv "$OUT/$b.tmp" "$OUT/$b"
done
echo "$CMDLINE" > "$OUT/cmdline"

if [ ! -x "$GEN_INIT_CPIO" ]; then build_gen_init_cpio "$KDIR/usr/gen_init_cpio.c"; fi
build_initramfs

# keep the current build tree and the newest other one; drop older ones
for d in $(ls -dt "$BUILD"/linux-* 2>/dev/null | grep -vxF "$KDIR" | tail -n +2 || true); do
  log "removing old build tree $d"; rm -rf "$d"
done

echo "$KEY" > "$STAMP"
print_outputs
