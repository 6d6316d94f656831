// CPUID customisation: per-vCPU topology (Intel SDM vol. 2, CPUID leaves 1, 4, 0xB)
// and the CPU profiles that hide features KVM's instruction emulator cannot run.
#include "arch/x86_64/cpuid.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace kvmkit::arch::x86_64;
using kvmkit::kvm::CpuidTable;

namespace {

constexpr uint32_t kAll = 0xffffffff;

// Feature bits (SDM vol. 2, table 3-10/3-11 and leaf 7/0x80000001 descriptions).
constexpr uint32_t kEcxSse3 = 1u << 0, kEcxCx16 = 1u << 13, kEcxSse41 = 1u << 19, kEcxPopcnt = 1u << 23,
                   kEcxXsave = 1u << 26, kEcxOsxsave = 1u << 27, kEcxAvx = 1u << 28, kEcxRdrand = 1u << 30,
                   kEcxHypervisor = 1u << 31, kEcxX2apic = 1u << 21;
constexpr uint32_t kEdxSse2 = 1u << 26, kEdxHtt = 1u << 28, kEdxTsc = 1u << 4;
constexpr uint32_t kLeaf7EbxSmap = 1u << 20, kLeaf7EbxAvx2 = 1u << 5, kLeaf7EbxFsgsbase = 1u << 0;
constexpr uint32_t kExtEdxRdtscp = 1u << 27, kExtEdxLm = 1u << 29, kExtEdxNx = 1u << 20;

kvm_cpuid_entry2 entry(uint32_t fn, uint32_t idx, bool indexed, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    kvm_cpuid_entry2 e{};
    e.function = fn;
    e.index = idx;
    e.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    e.eax = a;
    e.ebx = b;
    e.ecx = c;
    e.edx = d;
    return e;
}

// A table shaped like KVM_GET_SUPPORTED_CPUID's, with every feature bit set.
CpuidTable host_table() {
    CpuidTable t;
    t.entries = {
        entry(0, 0, false, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),
        entry(1, 0, false, 0x000806f8, 0x00ff0800, kAll & ~kEcxHypervisor, kAll & ~kEdxHtt),
        entry(4, 0, true, 0xfc004121, 0x01c0003f, 0x3f, 0),   // L1d: type 1, level 1
        entry(4, 1, true, 0xfc004122, 0x01c0003f, 0x3f, 0),   // L1i
        entry(4, 2, true, 0xfc01c143, 0x03c0003f, 0x7ff, 0),  // L2
        entry(4, 3, true, 0, 0, 0, 0),                        // no more caches
        entry(7, 0, true, 1, kAll, kAll, kAll),
        entry(7, 1, true, 0, 0x55, 0x66, 0x77),
        entry(0xb, 0, true, 1, 2, 0x100, 0),
        entry(0xb, 1, true, 7, 64, 0x201, 0),
        entry(0xb, 2, true, 0, 0, 2, 0),
        entry(0xd, 0, true, 0x2e7, 0xa88, 0xa88, 0),
        entry(0xd, 1, true, 0xf, 0, 0, 0),
        entry(0x80000001, 0, false, 0, 0, kAll, kAll),
    };
    return t;
}

const kvm_cpuid_entry2& at(const CpuidTable& t, uint32_t fn, uint32_t idx = 0) {
    auto* e = t.find(fn, idx);
    EXPECT_NE(e, nullptr) << std::hex << fn << "." << idx;
    static kvm_cpuid_entry2 none{};
    return e ? *e : none;
}

}  // namespace

TEST(Cpuid, Leaf1TopologyAndHypervisorBit) {
    auto t = host_table();
    customize_cpuid(t, CpuProfile::Host, 3, 4);
    const auto& l1 = at(t, 1);
    EXPECT_EQ(l1.ebx >> 24, 3u) << "EBX[31:24]: initial APIC ID = vCPU index";
    EXPECT_EQ((l1.ebx >> 16) & 0xff, 4u) << "EBX[23:16]: logical processors";
    EXPECT_EQ((l1.ebx >> 8) & 0xff, 8u) << "EBX[15:8]: CLFLUSH line size in 8-byte units (64 bytes)";
    EXPECT_TRUE(l1.ecx & kEcxHypervisor);
    EXPECT_TRUE(l1.edx & kEdxHtt) << "HTT: the logical processor count is valid";
}

TEST(Cpuid, EachVcpuGetsItsOwnApicId) {
    for (uint32_t i = 0; i < 8; ++i) {
        auto t = host_table();
        customize_cpuid(t, CpuProfile::Host, i, 8);
        EXPECT_EQ(at(t, 1).ebx >> 24, i);
        EXPECT_EQ(at(t, 0xb, 0).edx, i) << "x2APIC ID in leaf 0xB EDX";
        EXPECT_EQ(at(t, 0xb, 1).edx, i);
    }
}

TEST(Cpuid, SingleVcpu) {
    auto t = host_table();
    customize_cpuid(t, CpuProfile::Host, 0, 1);
    const auto& l1 = at(t, 1);
    EXPECT_EQ(l1.ebx >> 24, 0u);
    EXPECT_EQ((l1.ebx >> 16) & 0xff, 1u);
    EXPECT_EQ(at(t, 0xb, 1).ebx & 0xffff, 1u);
    EXPECT_EQ(at(t, 0xb, 1).eax & 0x1f, 0u);
    EXPECT_EQ(at(t, 4, 0).eax >> 26, 0u);
}

TEST(Cpuid, Leaf4CoresPerPackage) {
    auto t = host_table();
    customize_cpuid(t, CpuProfile::Host, 0, 6);
    for (uint32_t i = 0; i < 3; ++i) {
        const auto& c = at(t, 4, i);
        EXPECT_EQ(c.eax >> 26, 5u) << "EAX[31:26]: cores per package - 1";
        EXPECT_EQ((c.eax >> 14) & 0xfff, 0u) << "EAX[25:14]: one logical processor per cache";
        EXPECT_EQ(c.eax & 0x3fff, host_table().entries[2 + i].eax & 0x3fff) << "cache type/level kept";
    }
    EXPECT_EQ(at(t, 4, 3).eax, 0u) << "the null subleaf stays null";
}

TEST(Cpuid, Leaf0xBLevels) {
    auto t = host_table();
    customize_cpuid(t, CpuProfile::Host, 2, 3);
    const auto& smt = at(t, 0xb, 0);
    EXPECT_EQ(smt.eax & 0x1f, 0u) << "one thread per core: shift 0";
    EXPECT_EQ(smt.ebx & 0xffff, 1u);
    EXPECT_EQ((smt.ecx >> 8) & 0xff, 1u) << "level type SMT";
    EXPECT_EQ(smt.ecx & 0xff, 0u);
    const auto& core = at(t, 0xb, 1);
    EXPECT_EQ(core.eax & 0x1f, 2u) << "3 cores need 2 bits of APIC ID";
    EXPECT_EQ(core.ebx & 0xffff, 3u);
    EXPECT_EQ((core.ecx >> 8) & 0xff, 2u) << "level type core";
    EXPECT_EQ(core.ecx & 0xff, 1u);
    const auto& end = at(t, 0xb, 2);
    EXPECT_EQ((end.ecx >> 8) & 0xff, 0u) << "level type invalid ends the enumeration";
    EXPECT_EQ(end.ebx & 0xffff, 0u);

    auto four = host_table();
    customize_cpuid(four, CpuProfile::Host, 0, 4);
    EXPECT_EQ(at(four, 0xb, 1).eax & 0x1f, 2u);
    auto five = host_table();
    customize_cpuid(five, CpuProfile::Host, 0, 5);
    EXPECT_EQ(at(five, 0xb, 1).eax & 0x1f, 3u);
}

TEST(Cpuid, HostProfileKeepsEveryFeature) {
    auto t = host_table();
    customize_cpuid(t, CpuProfile::Host, 0, 1);
    const auto& l1 = at(t, 1);
    for (uint32_t bit : {kEcxPopcnt, kEcxXsave, kEcxRdrand, kEcxCx16, kEcxAvx, kEcxX2apic})
        EXPECT_TRUE(l1.ecx & bit) << std::hex << bit;
    EXPECT_EQ(at(t, 7).ebx, kAll);
    EXPECT_TRUE(at(t, 0x80000001).edx & kExtEdxRdtscp);
    EXPECT_EQ(at(t, 0xd, 0).eax, 0x2e7u) << "XSAVE state leaf kept";
}

TEST(Cpuid, EmulatedProfileHidesEmulatorGaps) {
    auto t = host_table();
    customize_cpuid(t, CpuProfile::Emulated, 0, 2);
    const auto& l1 = at(t, 1);
    EXPECT_FALSE(l1.ecx & kEcxPopcnt);
    EXPECT_FALSE(l1.ecx & kEcxXsave);
    EXPECT_FALSE(l1.ecx & kEcxOsxsave);
    EXPECT_FALSE(l1.ecx & kEcxRdrand);
    EXPECT_FALSE(l1.ecx & kEcxCx16);
    EXPECT_FALSE(l1.ecx & kEcxAvx);
    EXPECT_FALSE(l1.ecx & kEcxSse41);
    EXPECT_FALSE(at(t, 7).ebx & kLeaf7EbxSmap);
    EXPECT_FALSE(at(t, 7).ebx & kLeaf7EbxAvx2);
    EXPECT_FALSE(at(t, 0x80000001).edx & kExtEdxRdtscp);
    EXPECT_EQ(at(t, 0xd, 0).eax | at(t, 0xd, 0).ebx | at(t, 0xd, 0).ecx | at(t, 0xd, 0).edx, 0u)
        << "no XSAVE state advertised without XSAVE";
    EXPECT_EQ(at(t, 0xd, 1).eax, 0u);

    // Baseline x86-64 features the guest cannot boot without stay.
    EXPECT_TRUE(l1.ecx & kEcxSse3);
    EXPECT_TRUE(l1.edx & kEdxSse2);
    EXPECT_TRUE(l1.edx & kEdxTsc);
    EXPECT_TRUE(at(t, 0x80000001).edx & kExtEdxLm);
    EXPECT_TRUE(at(t, 0x80000001).edx & kExtEdxNx);
    EXPECT_TRUE(l1.ecx & kEcxHypervisor);
    // Only leaf 7 subleaf 0 carries the masked bits; subleaf 1 is left alone.
    EXPECT_EQ(at(t, 7, 1).ebx, 0x55u);
    EXPECT_EQ(at(t, 7, 1).edx, 0x77u);
    // Emulated keeps what only Minimal hides.
    EXPECT_TRUE(l1.ecx & kEcxX2apic);
    EXPECT_TRUE(at(t, 7).ebx & kLeaf7EbxFsgsbase);
}

TEST(Cpuid, MinimalProfileHidesMore) {
    auto t = host_table();
    customize_cpuid(t, CpuProfile::Minimal, 0, 1);
    EXPECT_FALSE(at(t, 1).ecx & kEcxPopcnt);
    EXPECT_FALSE(at(t, 1).ecx & kEcxX2apic);
    EXPECT_FALSE(at(t, 7).ebx & kLeaf7EbxFsgsbase);
    EXPECT_TRUE(at(t, 1).edx & kEdxSse2);

    // Every feature a profile lists is really cleared, and Minimal is a superset of Emulated.
    auto emulated = hidden_features(CpuProfile::Emulated);
    auto minimal = hidden_features(CpuProfile::Minimal);
    EXPECT_TRUE(hidden_features(CpuProfile::Host).empty());
    EXPECT_GT(minimal.size(), emulated.size());
    for (const auto& f : emulated) {
        bool found = false;
        for (const auto& g : minimal) found |= std::string(f.name) == g.name;
        EXPECT_TRUE(found) << f.name;
    }
    for (const auto& f : minimal) {
        const auto* e = t.find(f.leaf, f.subleaf);
        if (!e) continue;
        const uint32_t reg = f.reg == CpuidReg::Eax   ? e->eax
                             : f.reg == CpuidReg::Ebx ? e->ebx
                             : f.reg == CpuidReg::Ecx ? e->ecx
                                                      : e->edx;
        EXPECT_FALSE(reg & (1u << f.bit)) << f.name;
    }
}

TEST(Cpuid, MissingLeavesAreTolerated) {
    CpuidTable t;
    t.entries = {entry(0, 0, false, 1, 0, 0, 0)};
    customize_cpuid(t, CpuProfile::Minimal, 0, 4);  // no leaf 1, 7, ...: nothing to do, no crash
    EXPECT_EQ(t.entries.size(), 1u);
    EXPECT_EQ(t.entries[0].eax, 1u);
}

TEST(CpuProfileNames, ParseAndName) {
    for (auto p : {CpuProfile::Host, CpuProfile::Emulated, CpuProfile::Minimal}) {
        auto parsed = parse_cpu_profile(cpu_profile_name(p));
        ASSERT_TRUE(parsed) << cpu_profile_name(p);
        EXPECT_EQ(*parsed, p);
    }
    EXPECT_EQ(*parse_cpu_profile("host"), CpuProfile::Host);
    EXPECT_EQ(*parse_cpu_profile("emulated"), CpuProfile::Emulated);
    EXPECT_EQ(*parse_cpu_profile("minimal"), CpuProfile::Minimal);
}

TEST(CpuProfileNames, ParseErrors) {
    for (const char* bad : {"", "fast", "Host", "host ", "auto"}) {
        auto r = parse_cpu_profile(bad);
        ASSERT_FALSE(r) << "'" << bad << "'";
        const auto& m = r.error().message();
        EXPECT_NE(m.find(std::string("'") + bad + "'"), std::string::npos) << m;
        EXPECT_NE(m.find("host"), std::string::npos) << m;
        EXPECT_NE(m.find("emulated"), std::string::npos) << m;
        EXPECT_NE(m.find("minimal"), std::string::npos) << m;
    }
}

TEST(CpuProfileNames, LinuxCommandLine) {
    EXPECT_EQ(linux_cmdline_for_profile(CpuProfile::Host), "");
    for (auto p : {CpuProfile::Emulated, CpuProfile::Minimal}) {
        const auto c = linux_cmdline_for_profile(p);
        EXPECT_NE(c.find("noxsave"), std::string::npos) << c;
        const auto cc = c.find("clearcpuid=");
        ASSERT_NE(cc, std::string::npos) << c;
        // clearcpuid takes a comma-separated list without spaces.
        const auto list =
            c.substr(cc + 11, c.find(' ', cc) == std::string::npos ? std::string::npos : c.find(' ', cc) - cc - 11);
        for (const char* flag : {"popcnt", "smap", "rdtscp"})
            EXPECT_NE(("," + list + ",").find(std::string(",") + flag + ","), std::string::npos) << flag;
        EXPECT_EQ(c.find("  "), std::string::npos);
        EXPECT_NE(c.front(), ' ');
        EXPECT_NE(c.back(), ' ');
    }
}
