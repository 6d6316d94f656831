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
import datetime
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The kernel parameters kvmkit appends to a Linux command line on PVM hosts
# (src/arch/x86_64/cpuid.cpp, linux_cmdline_for_profile): they keep a kernel
# that is not built for PVM away from instructions the emulator lacks.  QEMU
# gets the same parameters so that both run the same guest.
PVM_LINUX_EXTRA = "noxsave clearcpuid=popcnt,smap,rdtscp,erms,fsrm"

VMMS = ("kvmkit", "qemu-pc", "qemu-microvm")


# --------------------------------------------------------------- helpers ---
def is_pvm_host():
    return os.path.isdir("/sys/module/kvm_pvm")


def proc_cpu_ns(pid):
    """Run time (ns) of all live threads of pid, from schedstat."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


def rss_split_kib(pid, mem_mib):
    """(guest RAM resident, everything else resident) in KiB, at this moment.
    Guest RAM = the mappings at least as large as the guest RAM (the VMM's
    anonymous mapping of it)."""
    guest = other = 0
    size = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for l in f:
                if l.startswith("Size:"):
                    size = int(l.split()[1])
                elif l.startswith("Rss:"):
                    if size is not None and size >= mem_mib * 1024:
                        guest += int(l.split()[1])
                    else:
                        other += int(l.split()[1])
    except (OSError, ValueError):
        return None, None
    return guest, other


def vm_hwm_kib(pid):
    """VmHWM (peak RSS of the process's own address space) in KiB, or None.
    Not ru_maxrss from wait4: that also takes the high-water mark of the
    address space the child had before exec(), which with vfork (Python's
    subprocess) is this Python process's."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for l in f:
                if l.startswith("VmHWM:"):
                    return int(l.split()[1])
    except (OSError, ValueError):
        pass
    return None


def kill_group(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Run:
    """Outcome of one VM run; times in seconds relative to spawn."""

    def __init__(self):
        self.first_byte = None
        self.ready = None
        self.bench_start = None
        self.bench_end = None
        self.bench_cpu_ns = None
        self.guest_rss_kib = None
        self.other_rss_kib = None
        self.last_line_t = None  # DONE / Power down / SIGTERM sent
        self.exit_t = None
        self.maxrss_kib = None
        self.cpu_s = None
        self.returncode = None
        self.error = None
        self.killed_after_done = False
        self.log = bytearray()

    def teardown(self):
        if self.last_line_t is None or self.exit_t is None or self.killed_after_done:
            return None
        return self.exit_t - self.last_line_t


def run_vm(argv, *, ready_re, timeout, on_ready=None, stop_mode="done",
           done_grace=10.0, bench=False, stdin_pipe=False, mem_mib=None):
    """Spawns argv and follows its console (stdout) until it exits.

    stop_mode: "done"     the guest powers off by itself after "KT: DONE";
                          last line = DONE; killed if not gone done_grace s later
               "sigterm"  send SIGTERM when ready_re is seen; last line = then
               "poweroff" write "poweroff\\n" when ready_re is seen; last line =
                          the kernel's "reboot: Power down"
    """
    r = Run()
    err = tempfile.TemporaryFile()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=err, start_new_session=True)
    deadline = t0 + timeout
    out_fd = proc.stdout.fileno()
    os.set_blocking(out_fd, False)
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    line = bytearray()
    line_start = None
    exited = False
    eof = False
    kill_at = None
    hwm_t = -1.0
    try:
        while not exited:
            now = time.monotonic()
            if now > deadline:
                r.error = f"timeout after {timeout:.0f} s"
                kill_group(proc)
                break
            if kill_at is not None and now > kill_at:
                r.killed_after_done = True
                kill_group(proc)
                kill_at = None
            fds = [] if eof else [out_fd]
            if pidfd is not None:
                fds.append(pidfd)
            wait = min(deadline - now, 0.05 if pidfd is None else 0.2)
            if kill_at is not None:
                wait = min(wait, max(0.0, kill_at - now))
            rd, _, _ = select.select(fds, [], [], max(0.0, wait))
            t = time.monotonic() - t0
            if t - hwm_t >= 0.05 or (pidfd is not None and pidfd in rd):
                h = vm_hwm_kib(proc.pid)  # monotonic: the last value read is the peak
                if h is not None:
                    r.maxrss_kib = h
                hwm_t = t
            if out_fd in rd:
                try:
                    data = os.read(out_fd, 65536)
                    eof = data == b""
                except BlockingIOError:
                    data = b""
                r.log += data
                if data and r.first_byte is None:
                    r.first_byte = t
                for b in data:
                    if line_start is None:
                        line_start = t
                    if b != 0x0A:
                        line.append(b)
                        continue
                    text = line.decode("utf-8", "replace").rstrip("\r")
                    ls, line, line_start = line_start, bytearray(), None
                    if r.ready is None and ready_re.search(text):
                        r.ready = t
                        if mem_mib and not bench:
                            r.guest_rss_kib, r.other_rss_kib = rss_split_kib(proc.pid, mem_mib)
                        if on_ready == "sigterm":
                            r.maxrss_kib = vm_hwm_kib(proc.pid) or r.maxrss_kib
                            r.last_line_t = time.monotonic() - t0
                            kill_group(proc, signal.SIGTERM)
                        elif on_ready == "poweroff":
                            try:
                                proc.stdin.write(b"poweroff\n")
                                proc.stdin.flush()
                            except OSError:
                                pass
                    if bench and text.startswith("KT: bench start"):
                        r.bench_start = t
                        r.bench_cpu_ns = proc_cpu_ns(proc.pid)
                        if mem_mib:
                            r.guest_rss_kib, r.other_rss_kib = rss_split_kib(proc.pid, mem_mib)
                    elif bench and text.startswith("KT: bench end") and r.bench_start is not None:
                        r.bench_end = ls
                        c = proc_cpu_ns(proc.pid)
                        if c is not None and r.bench_cpu_ns is not None:
                            r.bench_cpu_ns = c - r.bench_cpu_ns
                        else:
                            r.bench_cpu_ns = None
                    elif text.startswith("KT: DONE") and stop_mode == "done":
                        r.last_line_t = t
                        r.maxrss_kib = vm_hwm_kib(proc.pid) or r.maxrss_kib
                        kill_at = time.monotonic() + done_grace
                    elif "reboot: Power down" in text and stop_mode == "poweroff":
                        r.last_line_t = t
            if pidfd is not None and pidfd in rd:
                exited = True
            elif pidfd is None and proc.poll() is not None:
                exited = True
            if eof and pidfd is None:
                exited = proc.poll() is not None
        r.exit_t = time.monotonic() - t0
    finally:
        if not exited:
            kill_group(proc)  # timeout, error or Ctrl-C: leave nothing behind
        if pidfd is not None:
            os.close(pidfd)
        if proc.returncode is None:
            try:
                _, status, ru = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                r.cpu_s = ru.ru_utime + ru.ru_stime
            except ChildProcessError:
                pass
        r.returncode = proc.returncode
        # leftover console bytes (after exit)
        try:
            while True:
                d = os.read(out_fd, 65536)
                if not d:
                    break
                r.log += d
        except (BlockingIOError, OSError):
            pass
        proc.stdout.close()
        if proc.stdin:
            try:
                proc.stdin.close()
            except OSError:
                pass
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        err.close()
    if r.error is None and r.ready is None:
        r.error = "no ready line"
    if r.error:
        r.error += f" (rc={r.returncode}); stderr: {stderr.strip()[-300:]!r}; console tail: " \
                   f"{bytes(r.log[-300:]).decode('utf-8', 'replace')!r}"
    return r


# ------------------------------------------------------------ commands ---
class Commands:
    def __init__(self, a):
        self.a = a

    def qemu_base(self, vmm, mem_mib, cpus):
        machine = "pc" if vmm == "qemu-pc" else "microvm"
        return [self.a.qemu, "-enable-kvm", "-M", machine, "-cpu", self.a.qemu_cpu,
                "-m", str(mem_mib), "-smp", str(cpus), "-nographic", "-nodefaults",
                "-serial", "stdio", "-no-reboot"]

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
        cmdline = g["cmdline"]
        if is_pvm_host() and PVM_LINUX_EXTRA.split()[0] not in cmdline.split():
            cmdline = (cmdline + " " + PVM_LINUX_EXTRA).strip()
        return self.qemu_base(vmm, a.linux_memory, a.linux_cpus) + [
            "-kernel", g["vmlinux"], "-initrd", g["initrd"], "-append", cmdline]


def find_linux_guest(cache):
    d = os.path.join(cache, "guest")
    vmlinux = os.path.join(d, "vmlinux")
    initrd = os.path.join(d, "initramfs.cpio")
    cmdfile = os.path.join(d, "cmdline")
    if not (os.path.isfile(vmlinux) and os.path.isfile(initrd)):
        return None
    cmdline = ""
    if os.path.isfile(cmdfile):
        with open(cmdfile) as f:
            cmdline = " ".join(f.read().split())
    return {"vmlinux": vmlinux, "initrd": initrd, "cmdline": cmdline}


# -------------------------------------------------------------- metrics ---
class Metric:
    def __init__(self, key, label, unit, scale=1.0, fmt="{:.1f}"):
        self.key, self.label, self.unit, self.scale, self.fmt = key, label, unit, scale, fmt


def collect(samples, key, fn):
    samples.setdefault(key, []).append(fn)


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


def print_text(rows, out):
    width = [max(len(HEAD[0]), *(len(r[1]) for r in rows if r[0] == "row"))]
    for i in range(1, len(HEAD)):
        width.append(max(len(HEAD[i]), *(len(r[2][i - 1]) for r in rows if r[0] == "row")))
    sep = "-+-".join("-" * w for w in width)

    def fmt(cols):
        return " | ".join([cols[0].ljust(width[0])] + [c.rjust(w) for c, w in zip(cols[1:], width[1:])])

    print(fmt(HEAD), file=out)
    print(sep, file=out)
    for r in rows:
        if r[0] == "section":
            print(r[1], file=out)
        else:
            print(fmt([r[1]] + r[2]), file=out)


def print_markdown(rows, out):
    print("| " + " | ".join(HEAD) + " |", file=out)
    print("|" + "|".join(["---"] + ["---:"] * (len(HEAD) - 1)) + "|", file=out)
    for r in rows:
        if r[0] == "section":
            print(f"| **{r[1]}** |" + " |" * (len(HEAD) - 1), file=out)
        else:
            print("| " + " | ".join([r[1]] + r[2]) + " |", file=out)


# --------------------------------------------------------------- context ---
def machine_info(a):
    info = {}
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info["nproc"] = os.cpu_count()
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for l in f:
                if l.startswith("model name"):
                    model = l.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cpu"] = model
    info["kernel"] = platform.release()
    info["kvm"] = "PVM (kvm_pvm): guests not built for PVM run under KVM's instruction emulator" \
        if is_pvm_host() else ("kvm_intel" if os.path.isdir("/sys/module/kvm_intel") else
                               "kvm_amd" if os.path.isdir("/sys/module/kvm_amd") else "?")
    try:
        info["kvmkit_commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                               capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src", "apps"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if dirty:
            info["kvmkit_commit"] += " (+ uncommitted changes in src/ or apps/)"
    except (OSError, subprocess.SubprocessError):
        info["kvmkit_commit"] = "?"
    try:
        info["kvmkit_version"] = subprocess.run([a.kvmkit, "version"], capture_output=True, text=True,
                                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["kvmkit_version"] = "?"
    try:
        info["qemu_version"] = subprocess.run([a.qemu, "--version"], capture_output=True, text=True,
                                              timeout=10).stdout.splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        info["qemu_version"] = "?"
    info["loadavg"] = open("/proc/loadavg").read().split()[:3]
    return info


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

    # Run private copies of kvmkit and the test guest: `ninja -C build` during
    # a long run must not change what is measured half-way.
    shown = {}
    tmp = None
    if not a.no_copy:
        tmp = tempfile.mkdtemp(prefix="kvmkit-bench-")
        if "kvmkit" in vmms:
            src = os.path.dirname(os.path.abspath(a.kvmkit))
            for n in ("kvmkit", "kvmkit-vmm"):
                shutil.copy2(os.path.join(src, n), tmp)
            shown[os.path.join(tmp, "kvmkit")] = a.kvmkit
            a.kvmkit = os.path.join(tmp, "kvmkit")
        dst = os.path.join(tmp, os.path.basename(a.test_kernel))
        shutil.copy2(a.test_kernel, dst)
        shown[dst] = a.test_kernel
        a.test_kernel = dst
    try:
        return measure(a, vmms, linux_guest, log, shown)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def measure(a, vmms, linux_guest, log, shown):
    cmds = Commands(a)
    info = machine_info(a)
    log(f"vmm_bench: {info['date']}, {info['nproc']} CPUs, {info['cpu']}, load {' '.join(info['loadavg'])}")
    if a.linux or a.no_test_guest:
        log(f"vmm_bench: Linux guest: {'found in ' + a.cache + '/guest' if linux_guest else 'not built, skipped'}")
    t_begin = time.monotonic()
    S, notes = run_suite(a, cmds, vmms, linux_guest, log)
    info["duration_s"] = round(time.monotonic() - t_begin, 1)
    info["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    rows = build_rows(a, S, notes, vmms, linux_guest is not None)

    def show(argv):
        # the original paths (not the private copies), relative to the repository when inside it
        argv = [shown.get(x, x) for x in argv]
        return [os.path.relpath(x, REPO) if x.startswith(REPO + "/") else x for x in argv]

    example = {v: show(cmds.test_guest(v, f"bench=pio:{a.pio_count}:{a.port:x}:{a.pio_op}")) for v in vmms}
    lexample = {v: show(cmds.linux(v, linux_guest)) for v in vmms} if linux_guest else {}
    out = sys.stdout
    if a.markdown:
        print(f"Measured {info['date']} in {info['duration_s']:.0f} s; load average before/after: "
              f"{' '.join(info['loadavg'])} / {' '.join(info['loadavg_end'])}.\n", file=out)
        print_markdown(rows, out)
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
        print_text(rows, out)
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
