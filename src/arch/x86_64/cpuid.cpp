#include "arch/x86_64/cpuid.hpp"

namespace kvmkit::arch::x86_64 {

namespace {
uint32_t& reg_of(kvm_cpuid_entry2& e, CpuidReg r) {
    switch (r) {
        case CpuidReg::Eax: return e.eax;
        case CpuidReg::Ebx: return e.ebx;
        case CpuidReg::Ecx: return e.ecx;
        case CpuidReg::Edx: return e.edx;
    }
    return e.eax;
}

// Instructions KVM's emulator cannot execute (PVM.md) and the features that
// advertise them. Leaf 1 ECX unless noted.
const CpuidFeature kEmulatorGaps[] = {
    {"pclmulqdq", 1, 0, CpuidReg::Ecx, 1},  {"ssse3", 1, 0, CpuidReg::Ecx, 9},
    {"fma", 1, 0, CpuidReg::Ecx, 12},       {"cx16", 1, 0, CpuidReg::Ecx, 13},
    {"sse4_1", 1, 0, CpuidReg::Ecx, 19},    {"sse4_2", 1, 0, CpuidReg::Ecx, 20},
    {"movbe", 1, 0, CpuidReg::Ecx, 22},     {"popcnt", 1, 0, CpuidReg::Ecx, 23},
    {"aes", 1, 0, CpuidReg::Ecx, 25},       {"xsave", 1, 0, CpuidReg::Ecx, 26},
    {"osxsave", 1, 0, CpuidReg::Ecx, 27},   {"avx", 1, 0, CpuidReg::Ecx, 28},
    {"f16c", 1, 0, CpuidReg::Ecx, 29},      {"rdrand", 1, 0, CpuidReg::Ecx, 30},
    {"bmi1", 7, 0, CpuidReg::Ebx, 3},       {"hle", 7, 0, CpuidReg::Ebx, 4},
    {"avx2", 7, 0, CpuidReg::Ebx, 5},       {"bmi2", 7, 0, CpuidReg::Ebx, 8},
    {"erms", 7, 0, CpuidReg::Ebx, 9},       {"rtm", 7, 0, CpuidReg::Ebx, 11},
    {"avx512f", 7, 0, CpuidReg::Ebx, 16},   {"rdseed", 7, 0, CpuidReg::Ebx, 18},
    {"adx", 7, 0, CpuidReg::Ebx, 19},       {"smap", 7, 0, CpuidReg::Ebx, 20},
    {"sha_ni", 7, 0, CpuidReg::Ebx, 29},    {"fsrm", 7, 0, CpuidReg::Edx, 4},
    {"abm", 0x80000001, 0, CpuidReg::Ecx, 5}, {"rdtscp", 0x80000001, 0, CpuidReg::Edx, 27},
};

const CpuidFeature kMinimalExtra[] = {
    {"pcid", 1, 0, CpuidReg::Ecx, 17},    {"x2apic", 1, 0, CpuidReg::Ecx, 21},
    {"tsc_deadline", 1, 0, CpuidReg::Ecx, 24}, {"fsgsbase", 7, 0, CpuidReg::Ebx, 0},
    {"smep", 7, 0, CpuidReg::Ebx, 7},     {"invpcid", 7, 0, CpuidReg::Ebx, 10},
    {"umip", 7, 0, CpuidReg::Ecx, 2},     {"pku", 7, 0, CpuidReg::Ecx, 3},
    {"la57", 7, 0, CpuidReg::Ecx, 16},    {"pdpe1gb", 0x80000001, 0, CpuidReg::Edx, 26},
};
}  // namespace

base::Result<CpuProfile> parse_cpu_profile(const std::string& name) {
    if (name == "host") return CpuProfile::Host;
    if (name == "emulated") return CpuProfile::Emulated;
    if (name == "minimal") return CpuProfile::Minimal;
    return base::fail("unknown CPU profile '" + name + "' (use host, emulated or minimal)");
}

const char* cpu_profile_name(CpuProfile p) {
    switch (p) {
        case CpuProfile::Host: return "host";
        case CpuProfile::Emulated: return "emulated";
        case CpuProfile::Minimal: return "minimal";
    }
    return "?";
}

std::vector<CpuidFeature> hidden_features(CpuProfile p) {
    std::vector<CpuidFeature> v;
    if (p == CpuProfile::Host) return v;
    v.assign(std::begin(kEmulatorGaps), std::end(kEmulatorGaps));
    if (p == CpuProfile::Minimal) v.insert(v.end(), std::begin(kMinimalExtra), std::end(kMinimalExtra));
    return v;
}

void customize_cpuid(kvm::CpuidTable& table, CpuProfile profile, uint32_t index, uint32_t count) {
    const uint32_t apic_id = index;
    for (auto& e : table.entries) {
        switch (e.function) {
            case 1:
                // EBX[31:24] initial APIC ID, [23:16] logical processors per package, [15:8] CLFLUSH line (8*8).
                e.ebx = (apic_id << 24) | ((count & 0xff) << 16) | (8 << 8);
                if (count > 1) e.edx |= 1u << 28;  // HTT: the count field is valid
                e.ecx |= 1u << 31;                 // running under a hypervisor
                break;
            case 4:
                // EAX[31:26]: cores per package - 1; one core per vCPU, one thread per core.
                if (e.eax & 0x1f) e.eax = (e.eax & 0x03ffffff) | ((count - 1) << 26);
                e.eax &= ~(0xfffu << 14);  // EAX[25:14]: logical processors sharing the cache - 1 = 0
                break;
            case 0xb:
            case 0x1f:
                // x2APIC topology: level 0 = SMT (1 thread), level 1 = core (count).
                e.edx = apic_id;
                if (e.index == 0) {
                    e.eax = 0;
                    e.ebx = 1;
                    e.ecx = (1u << 8) | 0;
                } else if (e.index == 1) {
                    uint32_t shift = 0;
                    while ((1u << shift) < count) ++shift;
                    e.eax = shift;
                    e.ebx = count;
                    e.ecx = (2u << 8) | 1;
                } else {
                    e.eax = e.ebx = 0;
                    e.ecx = e.index;
                }
                break;
            default: break;
        }
    }
    for (const auto& f : hidden_features(profile)) {
        if (auto* e = table.find(f.leaf, f.subleaf)) reg_of(*e, f.reg) &= ~(1u << f.bit);
    }
    if (profile != CpuProfile::Host) {
        // Without xsave the XSAVE state leaf must not advertise anything either.
        for (auto& e : table.entries)
            if (e.function == 0xd) e.eax = e.ebx = e.ecx = e.edx = 0;
    }
}

std::string linux_cmdline_for_profile(CpuProfile p) {
    if (p == CpuProfile::Host) return "";
    // 6.1's clearcpuid takes names of /proc/cpuinfo flags; xsave has its own switch.
    return "noxsave clearcpuid=popcnt,smap,rdtscp,erms,fsrm";
}

}  // namespace kvmkit::arch::x86_64
