#include "vmm/exit_dispatch.hpp"

#include <cstdio>
#include <cstring>

#include "base/log.hpp"

namespace kvmkit::vmm {

namespace {
base::RateLimiter g_unclaimed_limiter(20);

std::string hex(uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

ExitAction handle_pio(const Peripherals& p, kvm_run& run, size_t run_size) {
    auto& io = run.io;
    const size_t size = io.size;
    if (size != 1 && size != 2 && size != 4) return {ExitAction::Kind::Fatal, "bad PIO size " + std::to_string(size)};
    // SAFETY: the data area lies inside the kvm_run mapping; checked because tests fabricate exits.
    const uint64_t total = uint64_t(size) * io.count;
    if (io.data_offset > run_size || total > run_size - io.data_offset)
        return {ExitAction::Kind::Fatal, "PIO data outside kvm_run"};
    uint8_t* data = reinterpret_cast<uint8_t*>(&run) + io.data_offset;
    for (uint32_t i = 0; i < io.count; ++i) {
        std::span<uint8_t> d(data + i * size, size);
        if (io.direction == KVM_EXIT_IO_OUT) {
            if (!p.pio.write(io.port, d) && g_unclaimed_limiter.allow())
                LOG_DEBUG("unclaimed port write %s size %zu", hex(io.port).c_str(), size);
        } else if (!p.pio.read(io.port, d)) {
            std::memset(d.data(), 0xff, size);
        }
    }
    return {};
}

ExitAction handle_mmio(const Peripherals& p, kvm_run& run) {
    auto& m = run.mmio;
    if (m.len == 0 || m.len > sizeof m.data) return {ExitAction::Kind::Fatal, "bad MMIO length " + std::to_string(m.len)};
    std::span<uint8_t> d(m.data, m.len);
    if (m.is_write) {
        if (!p.mmio.write(m.phys_addr, d) && g_unclaimed_limiter.allow())
            LOG_DEBUG("unclaimed MMIO write %s len %u", hex(m.phys_addr).c_str(), m.len);
    } else if (!p.mmio.read(m.phys_addr, d)) {
        std::memset(d.data(), 0xff, d.size());
    }
    return {};
}
}  // namespace

ExitAction handle_exit(const Peripherals& p, kvm_run& run, size_t run_size) {
    switch (run.exit_reason) {
        case KVM_EXIT_IO: return handle_pio(p, run, run_size);
        case KVM_EXIT_MMIO: return handle_mmio(p, run);
        case KVM_EXIT_INTR:
        case KVM_EXIT_HLT:  // with the in-kernel LAPIC, HLT stays in the kernel; nothing to do here
        case KVM_EXIT_IRQ_WINDOW_OPEN: return {};
        case KVM_EXIT_SHUTDOWN: return {ExitAction::Kind::Reset, "triple fault"};
        case KVM_EXIT_SYSTEM_EVENT:
            switch (run.system_event.type) {
                case KVM_SYSTEM_EVENT_SHUTDOWN: return {ExitAction::Kind::Poweroff, "system event: shutdown"};
                case KVM_SYSTEM_EVENT_RESET: return {ExitAction::Kind::Reset, "system event: reset"};
                case KVM_SYSTEM_EVENT_CRASH: return {ExitAction::Kind::Fatal, "guest crashed (system event)"};
                default:
                    return {ExitAction::Kind::Fatal, "unknown system event " + std::to_string(run.system_event.type)};
            }
        case KVM_EXIT_FAIL_ENTRY:
            return {ExitAction::Kind::Fatal,
                    "KVM_RUN failed to enter the guest (hardware reason " +
                        hex(run.fail_entry.hardware_entry_failure_reason) + ")"};
        case KVM_EXIT_INTERNAL_ERROR:
            if (run.internal.suberror == KVM_INTERNAL_ERROR_EMULATION) return {ExitAction::Kind::EmulationFailure, ""};
            return {ExitAction::Kind::Fatal, "KVM internal error, suberror " + std::to_string(run.internal.suberror)};
        default:
            return {ExitAction::Kind::Fatal, std::string("unexpected exit ") + exit_reason_name(run.exit_reason) + " (" +
                                                 std::to_string(run.exit_reason) + ")"};
    }
}

EmulationFix decide_emulation_fix(std::span<const uint8_t> insn) {
    if (insn.empty()) return {};
    // int3 is a trap: the guest's #BP handler expects RIP after the instruction.
    if (insn[0] == 0xcc) return {EmulationFix::Kind::DeliverBreakpoint, 1};
    // fwait/wait only checks for pending x87 exceptions; with none pending it is a no-op.
    if (insn[0] == 0x9b) return {EmulationFix::Kind::Skip, 1};
    return {};
}

const char* exit_reason_name(uint32_t reason) {
    switch (reason) {
        case KVM_EXIT_UNKNOWN: return "UNKNOWN";
        case KVM_EXIT_EXCEPTION: return "EXCEPTION";
        case KVM_EXIT_IO: return "IO";
        case KVM_EXIT_HYPERCALL: return "HYPERCALL";
        case KVM_EXIT_DEBUG: return "DEBUG";
        case KVM_EXIT_HLT: return "HLT";
        case KVM_EXIT_MMIO: return "MMIO";
        case KVM_EXIT_IRQ_WINDOW_OPEN: return "IRQ_WINDOW_OPEN";
        case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
        case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
        case KVM_EXIT_INTR: return "INTR";
        case KVM_EXIT_SET_TPR: return "SET_TPR";
        case KVM_EXIT_TPR_ACCESS: return "TPR_ACCESS";
        case KVM_EXIT_NMI: return "NMI";
        case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
        case KVM_EXIT_SYSTEM_EVENT: return "SYSTEM_EVENT";
        case KVM_EXIT_X86_RDMSR: return "X86_RDMSR";
        case KVM_EXIT_X86_WRMSR: return "X86_WRMSR";
        default: return "?";
    }
}

}  // namespace kvmkit::vmm
