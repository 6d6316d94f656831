// What to do about one VM exit, decided without touching KVM: the vCPU loop
// runs KVM_RUN and applies the action; unit tests feed fabricated kvm_run
// structures. Port I/O and MMIO are dispatched to the buses here; accesses
// nobody claims get what an empty bus gives (writes ignored, reads all-ones).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>

#include "bus/bus.hpp"

namespace kvmkit::vmm {

struct Peripherals {
    const bus::Bus& pio;
    const bus::Bus& mmio;
};

struct ExitAction {
    enum class Kind {
        Continue,           // run the vCPU again
        Poweroff,           // the guest asked to power off
        Reset,              // the guest asked for a reset (or triple-faulted)
        EmulationFailure,   // KVM could not emulate an instruction: see decide_emulation_fix
        Fatal,              // stop the VM with `message`
    };
    Kind kind = Kind::Continue;
    std::string message;
};

// `run_size` bounds where the kernel may have put PIO data (kvm_run's mmap size).
ExitAction handle_exit(const Peripherals& p, kvm_run& run, size_t run_size);

// How to complete an instruction the backend's emulator could not run.
struct EmulationFix {
    enum class Kind { None, DeliverBreakpoint, Skip };
    Kind kind = Kind::None;
    unsigned length = 0;  // bytes to advance RIP by
};
EmulationFix decide_emulation_fix(std::span<const uint8_t> insn);

const char* exit_reason_name(uint32_t reason);

}  // namespace kvmkit::vmm
