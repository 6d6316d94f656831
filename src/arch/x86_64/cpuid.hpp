// The CPUID a vCPU sees: KVM's supported set, with the topology of this vCPU
// and a CPU profile that hides what the backend cannot run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "kvm/kvm.hpp"

namespace kvmkit::arch::x86_64 {

enum class CpuProfile {
    Host,      // everything KVM supports
    Emulated,  // hides features whose instructions KVM's emulator lacks (PVM hosts, non-PVM guests)
    Minimal,   // additionally hides most optional extensions (a narrow, safe baseline)
};

base::Result<CpuProfile> parse_cpu_profile(const std::string& name);
const char* cpu_profile_name(CpuProfile p);

// A feature bit: CPUID leaf/subleaf, register and bit.
enum class CpuidReg { Eax, Ebx, Ecx, Edx };
struct CpuidFeature {
    const char* name;
    uint32_t leaf;
    uint32_t subleaf;
    CpuidReg reg;
    uint8_t bit;
};

// The features a profile clears.
std::vector<CpuidFeature> hidden_features(CpuProfile p);

// Adjusts `table` (from KVM_GET_SUPPORTED_CPUID) for vCPU `index` of `count`:
// APIC IDs, logical processor counts, hypervisor bit, then the profile.
void customize_cpuid(kvm::CpuidTable& table, CpuProfile profile, uint32_t index, uint32_t count);

// Kernel command-line words that hide the same features from a Linux guest.
// Needed on PVM, where CPUID set through KVM_SET_CPUID2 does not fully reach
// a guest that runs under the emulator (see ../shared/PVM.md).
std::string linux_cmdline_for_profile(CpuProfile p);

}  // namespace kvmkit::arch::x86_64
