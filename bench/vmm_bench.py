#!/usr/bin/env python3
"""kvmkit vs QEMU, side by side, in one run.

Boots the same guests under kvmkit, QEMU -M pc and QEMU -M microvm, each N
times, and prints the median of each metric and the ratio kvmkit/QEMU.  The
guests: the project's test guest (build/tests/guests, always) and, with
--linux, the default Linux guest ($KVMKIT_CACHE/guest, if it is built).  The
runs are interleaved (kvmkit, pc, microvm, kvmkit, ...) so that changes in the
host's load hit all three alike.

Metrics (host-side clocks only; nothing is asked of the guest but its console):
  * start-up: time from just before spawning the VMM to the first byte of
    guest console output, and to the first "KT: start" line (test guest) or
    "KVMKIT-GUEST-READY" (Linux guest);
  * exit round trip: the test guest does <count> port or MMIO accesses to an
    address no device claims in any of the three machines, so each one is a
    full exit to the VMM's user space and back; time between the host seeing
    the end of "KT: bench start" and the beginning of "KT: bench end",
    divided by <count>;  plus the host CPU the VMM spent over the same
    interval (sum of all its threads' run time, /proc/<pid>/task/*/schedstat);
  * teardown: from the guest's last line ("KT: DONE ...", written just before
    the ACPI S5 write) to the VMM process's exit; for the Linux guest, from
    SIGTERM to exit (or, with --linux-poweroff, from the kernel's
    "reboot: Power down" line to exit);
  * memory: peak RSS of the VMM process (VmHWM from /proc/<pid>/status,
    sampled until it exits), and its RSS split into guest RAM and the rest
    (/proc/<pid>/smaps) at the start of the bench loop / at READY;
  * host CPU time of the VMM process (user+sys from wait4) over the whole run.

Only the Python 3 standard library is used.  Benchmarks are never part of the
test suite; nothing here asserts anything about timings.
"""

import argparse
import json
import os
import re
import shlex
import statistics
import sys
import time

from benchlib import (REPO, Metric, PrivateCopies, collect, find_linux_guest, linux_cmdline_for_qemu,
                      machine_info, print_markdown, print_text, qemu_argv, run_vm)

VMMS = ("kvmkit", "qemu-pc", "qemu-microvm")


# ------------------------------------------------------------ commands ---
class Commands:
    def __init__(self, a):
        self.a = a

    def qemu_base(self, vmm, mem_mib, cpus):
        return qemu_argv(self.a.qemu, self.a.qemu_cpu, "pc" if vmm == "qemu-pc" else "microvm", mem_mib, cpus)

    def test_guest(self, vmm, cmdline):
        a = self.a
        kernel = a.test_kernel
        if vmm == "kvmkit":
            return [a.kvmkit, "run", "--kernel", kernel, "--cmdline", cmdline,
                    "--memory", f"{a.memory}M", "--cpus", "1"]
        return self.qemu_base(vmm, a.memory, 1) + ["-kernel", kernel, "-append", cmdline]

    def linux(self, vmm, g):
        a = self.a
        if vmm == "kvmkit":
            # kvmkit appends PVM_LINUX_EXTRA itself on PVM hosts
            return [a.kvmkit, "run", "--kernel", g["vmlinux"], "--initrd", g["initrd"],
                    "--cmdline", g["cmdline"], "--memory", f"{a.linux_memory}M",
                    "--cpus", str(a.linux_cpus)]
        cmdline = linux_cmdline_for_qemu(g["cmdline"])
        return self.qemu_base(vmm, a.linux_memory, a.linux_cpus) + [
            "-kernel", g["vmlinux"], "-initrd", g["initrd"], "-append", cmdline]


# -------------------------------------------------------------- metrics ---
def run_suite(a, cmds, vmms, linux_guest, log):
    """Returns {vmm: {metric_key: [values]}} and notes."""
    S = {v: {} for v in vmms}
    notes = {v: [] for v in vmms}
    plans = []
    pio = f"bench=pio:{a.pio_count}:{a.port:x}:{a.pio_op}"
    mmio = f"bench=mmio:{a.mmio_count}:{a.mmio_addr:x}:{a.mmio_op}"
    for i in range(0 if a.no_test_guest else a.runs):
        for kind, cl in (("pio", pio), ("mmio", mmio)):
            plans.append(("test", kind, cl, i))
    if linux_guest:
        for i in range(a.linux_runs):
            plans.append(("linux", "linux", None, i))
    # Interleave the VMMs run by run, so that slow drifts of the host's load
    # hit all of them alike.
    for what, kind, cl, i in plans:
        for vmm in vmms:
            s = S[vmm]
            if what == "test":
                argv = cmds.test_guest(vmm, cl)
                r = run_vm(argv, ready_re=re.compile(r"^KT: start\b"), timeout=a.timeout,
                           bench=True, stop_mode="done", done_grace=a.done_grace, mem_mib=a.memory)
                tag = f"{vmm:13s} test/{kind:4s} #{i + 1}"
                if r.error:
                    log(f"{tag}: FAILED: {r.error}")
                    s.setdefault("failures", []).append(1)
                    continue
                collect(s, "t_first_byte", r.first_byte)
                collect(s, "t_ready", r.ready)
                count = a.pio_count if kind == "pio" else a.mmio_count
                if r.bench_start is not None and r.bench_end is not None:
                    collect(s, f"exit_{kind}", (r.bench_end - r.bench_start) / count)
                    if r.bench_cpu_ns is not None:
                        collect(s, f"cpu_{kind}", r.bench_cpu_ns * 1e-9 / count)
                else:
                    log(f"{tag}: no bench start/end lines")
                td = r.teardown()
                if r.killed_after_done:
                    if "no-poweroff" not in notes[vmm]:
                        notes[vmm].append("no-poweroff")
                collect(s, "teardown", td)
                collect(s, "rss", r.maxrss_kib)
                collect(s, "guest_rss", r.guest_rss_kib)
                collect(s, "rss_overhead", r.other_rss_kib)
                collect(s, f"cpu_run_{kind}", r.cpu_s)
                log(f"{tag}: first byte {r.first_byte * 1e3:8.1f} ms, KT start {r.ready * 1e3:8.1f} ms, "
                    f"exit {((r.bench_end or 0) - (r.bench_start or 0)) / count * 1e6:6.2f} us, "
                    f"teardown {'n/a' if td is None else f'{td * 1e3:.1f} ms'}, "
                    f"peak rss {r.maxrss_kib / 1024:.1f} MiB (then: guest RAM "
                    f"{'?' if r.guest_rss_kib is None else f'{r.guest_rss_kib / 1024:.1f}'} MiB, rest "
                    f"{'?' if r.other_rss_kib is None else f'{r.other_rss_kib / 1024:.1f}'} MiB), "
                    f"cpu {r.cpu_s:.2f} s, rc {r.returncode}")
            else:
                argv = cmds.linux(vmm, linux_guest)
                mode = "poweroff" if a.linux_poweroff else "sigterm"
                r = run_vm(argv, ready_re=re.compile(r"KVMKIT-GUEST-READY"), timeout=a.linux_timeout,
                           on_ready=mode, stop_mode=mode, stdin_pipe=True, mem_mib=a.linux_memory)
                tag = f"{vmm:13s} linux      #{i + 1}"
                if r.error:
                    log(f"{tag}: FAILED: {r.error}")
                    s.setdefault("failures", []).append(1)
                    continue
                collect(s, "l_first_byte", r.first_byte)
                collect(s, "l_ready", r.ready)
                td = r.teardown()
                collect(s, "l_teardown", td)
                collect(s, "l_rss", r.maxrss_kib)
                collect(s, "l_guest_rss", r.guest_rss_kib)
                collect(s, "l_rss_overhead", r.other_rss_kib)
                collect(s, "l_cpu", r.cpu_s)
                log(f"{tag}: first byte {r.first_byte * 1e3:8.1f} ms, READY {r.ready:8.2f} s, "
                    f"stop {'n/a' if td is None else f'{td * 1e3:.1f} ms'}, "
                    f"peak rss {r.maxrss_kib / 1024:.1f} MiB (then: guest RAM "
                    f"{'?' if r.guest_rss_kib is None else f'{r.guest_rss_kib / 1024:.1f}'} MiB, rest "
                    f"{'?' if r.other_rss_kib is None else f'{r.other_rss_kib / 1024:.1f}'} MiB), "
                    f"cpu {r.cpu_s:.2f} s, rc {r.returncode}")
    return S, notes


def metric_list(a, with_linux):
    ms = [] if a.no_test_guest else [
        "Test guest (%s, %d MiB, 1 vCPU): medians over its %d PIO and %d MMIO runs"
         % (os.path.basename(a.test_kernel), a.memory, a.runs, a.runs),
        Metric("t_first_byte", "start → first console byte", "ms", 1e3),
        Metric("t_ready", "start → `KT: start` line", "ms", 1e3),
        "Exit round trip: loop time / count (medians of %d runs each)" % a.runs,
        Metric("exit_pio", f"PIO {a.pio_op} port 0x{a.port:x}, per exit", "µs", 1e6, "{:.2f}"),
        Metric("exit_mmio", f"MMIO {a.mmio_op} 0x{a.mmio_addr:x}, per exit", "µs", 1e6, "{:.2f}"),
        Metric("cpu_pio", "host CPU per PIO exit (all VMM threads)", "µs", 1e6, "{:.2f}"),
        Metric("cpu_mmio", "host CPU per MMIO exit (all VMM threads)", "µs", 1e6, "{:.2f}"),
        "Teardown, memory, CPU (test guest)",
        Metric("teardown", "`KT: DONE` line → process exit", "ms", 1e3, "{:.1f}"),
        Metric("rss", "peak RSS of the VMM process (VmHWM)", "MiB", 1 / 1024, "{:.1f}"),
        Metric("guest_rss", "RSS at bench start: guest RAM", "MiB", 1 / 1024, "{:.1f}"),
        Metric("rss_overhead", "RSS at bench start: all but guest RAM", "MiB", 1 / 1024, "{:.1f}"),
        Metric("cpu_run_pio", f"host CPU, whole run with {a.pio_count} PIO exits", "s", 1, "{:.2f}"),
        Metric("cpu_run_mmio", f"host CPU, whole run with {a.mmio_count} MMIO exits", "s", 1, "{:.2f}"),
    ]
    if with_linux:
        stop = "`reboot: Power down` → exit" if a.linux_poweroff else "SIGTERM → process exit"
        ms += [
            "Linux guest (vmlinux PVH + initramfs, %d MiB, %d vCPU), median of %d runs"
             % (a.linux_memory, a.linux_cpus, a.linux_runs),
            Metric("l_first_byte", "start → first console byte", "s", 1, "{:.2f}"),
            Metric("l_ready", "start → `KVMKIT-GUEST-READY`", "s", 1, "{:.2f}"),
            Metric("l_teardown", stop, "ms", 1e3, "{:.1f}"),
            Metric("l_rss", "peak RSS of the VMM process (VmHWM)", "MiB", 1 / 1024, "{:.1f}"),
            Metric("l_guest_rss", "RSS at READY: guest RAM", "MiB", 1 / 1024, "{:.1f}"),
            Metric("l_rss_overhead", "RSS at READY: all but guest RAM", "MiB", 1 / 1024, "{:.1f}"),
            Metric("l_cpu", "host CPU, whole run", "s", 1, "{:.2f}"),
        ]
    return ms


def build_rows(a, S, notes, vmms, with_linux):
    rows = []
    for m in metric_list(a, with_linux):
        if isinstance(m, str):
            rows.append(("section", m))
            continue
        vals = {}
        spread = {}
        for v in vmms:
            xs = [x * m.scale for x in S[v].get(m.key, []) if x is not None]
            vals[v] = statistics.median(xs) if xs else None
            spread[v] = (min(xs), max(xs)) if xs else None
        cells = []
        for v in VMMS:
            if v not in vmms:
                cells.append("–")
            elif vals[v] is None:
                cells.append("n/a")
            elif a.spread and spread[v][0] != spread[v][1]:
                cells.append(m.fmt.format(vals[v]) + " [" + m.fmt.format(spread[v][0]) + "–"
                             + m.fmt.format(spread[v][1]) + "]")
            else:
                cells.append(m.fmt.format(vals[v]))
        for q in ("qemu-pc", "qemu-microvm"):
            if "kvmkit" in vmms and q in vmms and vals.get("kvmkit") is not None and vals.get(q):
                cells.append("{:.2f}".format(vals["kvmkit"] / vals[q]))
            else:
                cells.append("–")
        rows.append(("row", f"{m.label} ({m.unit})", cells))
    return rows


HEAD = ["metric", "kvmkit", "qemu-pc", "qemu-microvm", "kvmkit/pc", "kvmkit/microvm"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="runs of the test guest per VMM and bench kind (default 5)")
    p.add_argument("--linux-runs", type=int, default=3, help="runs of the Linux guest per VMM (default 3)")
    p.add_argument("--linux", action="store_true",
                   help="also run the default Linux guest, if it is built (off by default: under PVM's "
                        "instruction emulation one boot takes 1-1.5 minutes of emulated CPU here)")
    p.add_argument("--no-linux", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-test-guest", action="store_true", help="run only the Linux guest")
    p.add_argument("--linux-poweroff", action="store_true",
                   help="stop the Linux guest with `poweroff` (slow under emulation) instead of SIGTERM")
    p.add_argument("--vmms", default=",".join(VMMS), help="comma-separated subset of " + ",".join(VMMS))
    p.add_argument("--pio-count", type=int, default=50000)
    p.add_argument("--mmio-count", type=int, default=50000)
    p.add_argument("--port", type=lambda s: int(s, 16), default=0x2000,
                   help="hex I/O port no device claims (default 2000)")
    p.add_argument("--pio-op", choices=("in", "out"), default="in")
    p.add_argument("--mmio-addr", type=lambda s: int(s, 16), default=0xd0000000,
                   help="hex guest-physical address no device claims (default d0000000)")
    p.add_argument("--mmio-op", choices=("read", "write"), default="read")
    p.add_argument("--memory", type=int, default=512, help="test guest RAM in MiB (default 512)")
    p.add_argument("--linux-memory", type=int, default=512, help="Linux guest RAM in MiB (default 512)")
    p.add_argument("--linux-cpus", type=int, default=1)
    p.add_argument("--image", choices=("pvh", "bzimage"), default="pvh",
                   help="test guest image: the PVH ELF (default) or the bzImage")
    p.add_argument("--kvmkit", default=os.path.join(REPO, "build/bin/kvmkit"))
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--qemu-cpu", default="host,-arch-capabilities",
                   help="QEMU -cpu (default host,-arch-capabilities: plain `host` aborts on PVM, "
                        "MSR 0x10a cannot be set)")
    p.add_argument("--guest-dir", default=os.path.join(REPO, "build/tests/guests"))
    p.add_argument("--cache", default=os.environ.get("KVMKIT_CACHE", "/var/cache/kvmkit"))
    p.add_argument("--timeout", type=float, default=120, help="per test-guest run, seconds")
    p.add_argument("--linux-timeout", type=float, default=600, help="per Linux run, seconds")
    p.add_argument("--done-grace", type=float, default=10,
                   help="kill a VMM this long after `KT: DONE` if it has not exited (no teardown then)")
    p.add_argument("--no-copy", action="store_true",
                   help="run build/bin/kvmkit and the test guest in place instead of private copies")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown, with the context")
    p.add_argument("--spread", action="store_true", help="show [min–max] next to each median")
    p.add_argument("--json", metavar="FILE", help="also write every sample to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-run lines on stderr")
    a = p.parse_args()

    vmms = [v.strip() for v in a.vmms.split(",") if v.strip()]
    for v in vmms:
        if v not in VMMS:
            p.error(f"unknown VMM {v!r}")
    a.test_kernel = os.path.join(a.guest_dir, "testguest.elf" if a.image == "pvh" else "testguest.bzImage")
    if not os.path.isfile(a.test_kernel):
        sys.exit(f"vmm_bench: {a.test_kernel} missing; build kvmkit first (ninja -C build)")
    if "kvmkit" in vmms and not os.access(a.kvmkit, os.X_OK):
        sys.exit(f"vmm_bench: {a.kvmkit} missing; build kvmkit first (ninja -C build)")
    linux_guest = find_linux_guest(a.cache) if (a.linux or a.no_test_guest) and not a.no_linux else None

    def log(msg):
        if not a.quiet:
            print(msg, file=sys.stderr, flush=True)

    copies = PrivateCopies(enabled=not a.no_copy)
    try:
        if "kvmkit" in vmms:
            a.kvmkit = copies.copy(a.kvmkit, "kvmkit-vmm")
        a.test_kernel = copies.copy(a.test_kernel)
        return measure(a, vmms, linux_guest, log, copies.show)
    finally:
        copies.close()


def measure(a, vmms, linux_guest, log, show):
    cmds = Commands(a)
    info = machine_info(a.kvmkit, a.qemu)
    log(f"vmm_bench: {info['date']}, {info['nproc']} CPUs, {info['cpu']}, load {' '.join(info['loadavg'])}")
    if a.linux or a.no_test_guest:
        log(f"vmm_bench: Linux guest: {'found in ' + a.cache + '/guest' if linux_guest else 'not built, skipped'}")
    t_begin = time.monotonic()
    S, notes = run_suite(a, cmds, vmms, linux_guest, log)
    info["duration_s"] = round(time.monotonic() - t_begin, 1)
    info["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    rows = build_rows(a, S, notes, vmms, linux_guest is not None)

    example = {v: show(cmds.test_guest(v, f"bench=pio:{a.pio_count}:{a.port:x}:{a.pio_op}")) for v in vmms}
    lexample = {v: show(cmds.linux(v, linux_guest)) for v in vmms} if linux_guest else {}
    out = sys.stdout
    if a.markdown:
        print(f"Measured {info['date']} in {info['duration_s']:.0f} s; load average before/after: "
              f"{' '.join(info['loadavg'])} / {' '.join(info['loadavg_end'])}.\n", file=out)
        print_markdown(HEAD, rows, out)
        print("", file=out)
        for k in ("nproc", "cpu", "kernel", "kvm", "kvmkit_commit", "kvmkit_version", "qemu_version"):
            print(f"- {k}: {info[k]}", file=out)
        print("\nCommands (test guest, PIO run; the MMIO run differs in `bench=`):\n", file=out)
        print("```", file=out)
        for v in vmms:
            print(shlex.join(example[v]), file=out)
        print("```", file=out)
        if lexample:
            print("\nCommands (Linux guest):\n\n```", file=out)
            for v in vmms:
                print(shlex.join(lexample[v]), file=out)
            print("```", file=out)
    else:
        print(f"\nkvmkit vs QEMU — {info['date']}, {info['nproc']} CPUs ({info['cpu']}), {info['kvm']}", file=out)
        print(f"kvmkit {info['kvmkit_commit']}; {info['qemu_version']}; took {info['duration_s']:.0f} s; "
              f"load before/after {' '.join(info['loadavg'])} / {' '.join(info['loadavg_end'])}\n", file=out)
        print_text(HEAD, rows, out)
    for v in vmms:
        if "no-poweroff" in notes[v]:
            print(f"\nNote: {v} did not exit after the guest's ACPI poweroff; it was killed after "
                  f"{a.done_grace:.0f} s and no teardown time is reported for it.", file=out)
        if S[v].get("failures"):
            print(f"\nNote: {len(S[v]['failures'])} run(s) of {v} failed (see stderr); medians are over the rest.",
                  file=out)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"info": info, "samples": S, "notes": notes,
                       "args": {k: v for k, v in vars(a).items()}}, f, indent=1)
    return 1 if any(S[v].get("failures") for v in vmms) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
