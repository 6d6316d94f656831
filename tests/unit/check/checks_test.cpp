// The pure checks of `kvmkit check`, fed fabricated hosts.
#include "check/checks.hpp"

#include <gtest/gtest.h>

#include <cerrno>

#include "fake_hosts.hpp"

using namespace kvmkit::check;
using namespace kvmkit::check::testing;

namespace {

// Expects the named check to exist and returns a copy of it (a copy, so that
// `get(evaluate_host(f), name)` does not dangle).
CheckResult get(const std::vector<CheckResult>& results, const std::string& name) {
    const CheckResult* r = find_check(results, name);
    EXPECT_NE(r, nullptr) << "no check named '" << name << "'";
    return r ? *r : CheckResult{"<missing>", Status::Fail, "", ""};
}

std::string dump(const std::vector<CheckResult>& results) {
    std::string s;
    for (const auto& r : results) s += std::string(to_string(r.status)) + " " + r.name + ": " + r.detail + "\n";
    return s;
}

}  // namespace

TEST(Checks, IntelHostPassesEverything) {
    auto results = evaluate_host(intel_host());
    for (const auto& r : results) {
        EXPECT_EQ(r.status, Status::Pass) << r.name << ": " << r.detail;
        EXPECT_TRUE(r.hint.empty()) << r.name;
    }
    EXPECT_EQ(exit_code(results), 0);
    EXPECT_EQ(overall_status(results), Status::Pass);
    EXPECT_TRUE(contains(get(results, "CPU virtualization").detail, "VT-x"));
    EXPECT_TRUE(contains(get(results, "KVM backend").detail, "kvm_intel"));
    EXPECT_TRUE(contains(get(results, "kernel modules").detail, "kvm (loaded)"));
    EXPECT_TRUE(contains(get(results, "kernel modules").detail, "kvm_intel (loaded)"));
    EXPECT_EQ(get(results, "KVM API version").detail, "12");
    EXPECT_TRUE(contains(get(results, "/dev/kvm exists").detail, "10:232"));
    EXPECT_TRUE(contains(get(results, "/dev/kvm exists").detail, "0660"));
    EXPECT_TRUE(contains(get(results, "/dev/kvm exists").detail, "root:kvm"));
}

TEST(Checks, ReportOrderFollowsTheSpec) {
    auto results = evaluate_host(intel_host());
    ASSERT_GE(results.size(), 10u);
    EXPECT_EQ(results[0].name, "CPU virtualization");
    EXPECT_EQ(results[1].name, "kernel modules");
    EXPECT_EQ(results[2].name, "KVM backend");
    EXPECT_EQ(results[3].name, "/dev/kvm exists");
    EXPECT_EQ(results[4].name, "/dev/kvm access");
    EXPECT_EQ(results[5].name, "KVM API version");
    EXPECT_EQ(results[6].name, "KVM_CREATE_VM");
    EXPECT_EQ(results[7].name, "kernel version");
    EXPECT_EQ(results[results.size() - 2].name, "/dev/net/tun");
    EXPECT_EQ(results.back().name, "/dev/vhost-net");
}

TEST(Checks, AmdHostPasses) {
    auto results = evaluate_host(amd_host());
    EXPECT_EQ(overall_status(results), Status::Pass) << dump(results);
    EXPECT_TRUE(contains(get(results, "CPU virtualization").detail, "svm"));
    EXPECT_TRUE(contains(get(results, "CPU virtualization").detail, "AMD-V"));
    EXPECT_TRUE(contains(get(results, "KVM backend").detail, "AMD-V (kvm_amd)"));
}

TEST(Checks, PvmHostPassesWithExplanation) {
    HostFacts f = pvm_host();
    auto results = evaluate_host(f);
    EXPECT_EQ(overall_status(results), Status::Pass) << dump(results);
    EXPECT_EQ(exit_code(results), 0);

    const auto& cpu = get(results, "CPU virtualization");
    EXPECT_EQ(cpu.status, Status::Pass);
    EXPECT_TRUE(contains(cpu.detail, "no vmx/svm flag"));
    EXPECT_TRUE(contains(cpu.detail, "not needed"));
    EXPECT_TRUE(contains(cpu.detail, "PVM"));

    const auto& backend = get(results, "KVM backend");
    EXPECT_EQ(backend.status, Status::Pass);
    EXPECT_TRUE(contains(backend.detail, "PVM (pagetable-based VM"));
    EXPECT_TRUE(contains(backend.detail, "kvm_pvm"));
    EXPECT_TRUE(contains(backend.detail, "instruction emulation"));
    EXPECT_TRUE(contains(backend.detail, "~1000x slower"));
    EXPECT_TRUE(contains(backend.detail, "kvmkit hides unsupported CPU features"));

    EXPECT_TRUE(contains(get(results, "kernel modules").detail, "kvm_pvm (built in)"));
}

TEST(Checks, PvmHostWithoutVhostNetWarnsOnly) {
    HostFacts f = pvm_host();
    f.vhost_net = DeviceFacts{.path = "/dev/vhost-net"};
    auto results = evaluate_host(f);
    EXPECT_EQ(overall_status(results), Status::Warn);
    EXPECT_EQ(exit_code(results), 0);
}

TEST(Checks, NoDevKvmOnIntelFailsWithModprobeAndBiosHint) {
    HostFacts f = intel_host();
    f.modules = {};
    f.kvm = DeviceFacts{.path = "/dev/kvm"};
    f.api_version = {};
    f.create_vm = {};
    f.capabilities.clear();
    auto results = evaluate_host(f);

    const auto& dev = get(results, "/dev/kvm exists");
    EXPECT_EQ(dev.status, Status::Fail);
    EXPECT_TRUE(contains(dev.hint, "modprobe kvm_intel")) << dev.hint;
    EXPECT_TRUE(contains(dev.hint, "VT-x")) << dev.hint;
    EXPECT_TRUE(contains(dev.hint, "BIOS")) << dev.hint;
    EXPECT_EQ(get(results, "kernel modules").status, Status::Fail);
    EXPECT_EQ(get(results, "KVM backend").status, Status::Fail);
    // The CPU itself is fine.
    EXPECT_EQ(get(results, "CPU virtualization").status, Status::Pass);
    // Checks that need an open /dev/kvm are left out, not failed again.
    EXPECT_EQ(find_check(results, "/dev/kvm access"), nullptr);
    EXPECT_EQ(find_check(results, "KVM API version"), nullptr);
    EXPECT_EQ(find_check(results, "KVM_CREATE_VM"), nullptr);
    EXPECT_EQ(find_check(results, "KVM_CAP_IRQCHIP"), nullptr);
    EXPECT_EQ(find_check(results, "max vCPUs"), nullptr);
    // The rest is still reported.
    EXPECT_NE(find_check(results, "kernel version"), nullptr);
    EXPECT_NE(find_check(results, "/dev/vhost-net"), nullptr);
    EXPECT_EQ(exit_code(results), 1);
}

TEST(Checks, NoDevKvmOnAmdHintsKvmAmdAndSvm) {
    HostFacts f = amd_host();
    f.modules = {};
    f.kvm = DeviceFacts{.path = "/dev/kvm"};
    auto results = evaluate_host(f);
    const auto& dev = get(results, "/dev/kvm exists");
    EXPECT_EQ(dev.status, Status::Fail);
    EXPECT_TRUE(contains(dev.hint, "modprobe kvm_amd")) << dev.hint;
    EXPECT_TRUE(contains(dev.hint, "SVM")) << dev.hint;
}

TEST(Checks, NoDevKvmWithModuleLoadedHintsMknod) {
    HostFacts f = intel_host();
    f.kvm = DeviceFacts{.path = "/dev/kvm"};
    auto results = evaluate_host(f);
    const auto& dev = get(results, "/dev/kvm exists");
    EXPECT_EQ(dev.status, Status::Fail);
    EXPECT_TRUE(contains(dev.hint, "mknod")) << dev.hint;
    EXPECT_TRUE(contains(dev.hint, "c 10 232")) << dev.hint;
}

TEST(Checks, VtxDisabledInBiosOnBareMetal) {
    HostFacts f = intel_host();
    f.cpu_flags = std::set<std::string>{"fpu", "lm"};
    f.modules = {{"kvm", ModuleState::Loaded}};
    f.kvm = DeviceFacts{.path = "/dev/kvm"};
    auto results = evaluate_host(f);
    const auto& cpu = get(results, "CPU virtualization");
    EXPECT_EQ(cpu.status, Status::Fail);
    EXPECT_TRUE(contains(cpu.hint, "BIOS")) << cpu.hint;
    EXPECT_TRUE(contains(cpu.hint, "kvm_intel")) << cpu.hint;
    const auto& mods = get(results, "kernel modules");
    EXPECT_EQ(mods.status, Status::Fail);
    EXPECT_TRUE(contains(mods.detail, "no backend module")) << mods.detail;
}

TEST(Checks, VirtualMachineWithoutNestingSuggestsNestedOrPvm) {
    HostFacts f = pvm_host();
    f.modules = {};
    f.kvm = DeviceFacts{.path = "/dev/kvm"};
    auto results = evaluate_host(f);
    const auto& cpu = get(results, "CPU virtualization");
    EXPECT_EQ(cpu.status, Status::Fail);
    EXPECT_TRUE(contains(cpu.detail, "virtual machine")) << cpu.detail;
    EXPECT_TRUE(contains(cpu.hint, "nested")) << cpu.hint;
    EXPECT_TRUE(contains(cpu.hint, "kvm_pvm")) << cpu.hint;
}

TEST(Checks, CpuinfoUnreadableWarns) {
    HostFacts f = intel_host();
    f.cpu_flags.reset();
    auto results = evaluate_host(f);
    EXPECT_EQ(get(results, "CPU virtualization").status, Status::Warn);
    EXPECT_EQ(exit_code(results), 0);
}

TEST(Checks, WorkingKvmWithUnidentifiedBackendOnlyWarns) {
    HostFacts f = intel_host();
    f.cpu_flags = std::set<std::string>{"fpu", "hypervisor"};
    f.modules = {};
    auto results = evaluate_host(f);
    EXPECT_EQ(get(results, "CPU virtualization").status, Status::Warn);
    EXPECT_EQ(get(results, "kernel modules").status, Status::Warn);
    EXPECT_EQ(get(results, "KVM backend").status, Status::Warn);
    EXPECT_EQ(exit_code(results), 0) << dump(results);
}

TEST(Checks, SeveralBackendsWarn) {
    HostFacts f = intel_host();
    f.modules["kvm_pvm"] = ModuleState::Loaded;
    auto results = evaluate_host(f);
    const auto& b = get(results, "KVM backend");
    EXPECT_EQ(b.status, Status::Warn);
    EXPECT_TRUE(contains(b.detail, "kvm_intel, kvm_pvm")) << b.detail;
}

TEST(Checks, NotACharacterDevice) {
    HostFacts f = intel_host();
    f.kvm.is_char_device = false;
    f.kvm.open_errno.reset();
    auto results = evaluate_host(f);
    EXPECT_EQ(get(results, "/dev/kvm exists").status, Status::Fail);
    EXPECT_EQ(find_check(results, "/dev/kvm access"), nullptr);
}

namespace {
HostFacts unprivileged_host(uint32_t mode, uint32_t gid, const char* group) {
    HostFacts f = intel_host();
    f.kvm.mode = mode;
    f.kvm.owner_gid = gid;
    f.kvm.group_name = group;
    f.kvm.open_errno = EACCES;
    f.api_version = {};
    f.create_vm = {};
    f.capabilities.clear();
    f.user.uid = 1000;
    f.user.name = "alice";
    f.user.gids = {1000, 27};
    return f;
}
}  // namespace

TEST(Checks, PermissionDeniedHintsKvmGroup) {
    auto results = evaluate_host(unprivileged_host(0660, 108, "kvm"));
    const auto& a = get(results, "/dev/kvm access");
    EXPECT_EQ(a.status, Status::Fail);
    EXPECT_TRUE(contains(a.detail, "permission denied")) << a.detail;
    EXPECT_TRUE(contains(a.detail, "alice")) << a.detail;
    EXPECT_TRUE(contains(a.detail, "0660")) << a.detail;
    EXPECT_TRUE(contains(a.hint, "root")) << a.hint;
    EXPECT_TRUE(contains(a.hint, "usermod -aG kvm")) << a.hint;
    EXPECT_EQ(find_check(results, "KVM API version"), nullptr);
    EXPECT_EQ(find_check(results, "KVM_CAP_IRQCHIP"), nullptr);
    EXPECT_EQ(exit_code(results), 1);
}

TEST(Checks, PermissionDeniedAfterJoiningGroupHintsRelogin) {
    HostFacts f = unprivileged_host(0660, 108, "kvm");
    f.user.listed_in_kvm_group = true;
    const auto& a = get(evaluate_host(f), "/dev/kvm access");
    EXPECT_EQ(a.status, Status::Fail);
    EXPECT_TRUE(contains(a.hint, "log out")) << a.hint;
    EXPECT_TRUE(contains(a.hint, "newgrp kvm")) << a.hint;
}

TEST(Checks, PermissionDeniedRootOnlyDeviceHintsUdevRule) {
    auto results = evaluate_host(unprivileged_host(0600, 0, "root"));
    const auto& a = get(results, "/dev/kvm access");
    EXPECT_EQ(a.status, Status::Fail);
    EXPECT_TRUE(contains(a.hint, "run as root")) << a.hint;
    EXPECT_TRUE(contains(a.hint, "udev")) << a.hint;
    EXPECT_TRUE(contains(a.hint, "kvm group") || contains(a.hint, "group 'kvm'")) << a.hint;
}

TEST(Checks, PermissionDeniedWhileInGroupPointsAtSecurityPolicy) {
    HostFacts f = unprivileged_host(0660, 108, "kvm");
    f.user.gids.push_back(108);
    const auto& a = get(evaluate_host(f), "/dev/kvm access");
    EXPECT_EQ(a.status, Status::Fail);
    EXPECT_TRUE(contains(a.hint, "ACL")) << a.hint;
}

TEST(Checks, NoDriverBehindDeviceNode) {
    HostFacts f = intel_host();
    f.modules = {};
    f.kvm.open_errno = ENXIO;
    f.api_version = {};
    f.create_vm = {};
    const auto& a = get(evaluate_host(f), "/dev/kvm access");
    EXPECT_EQ(a.status, Status::Fail);
    EXPECT_TRUE(contains(a.detail, "ENXIO")) << a.detail;
    EXPECT_TRUE(contains(a.hint, "modprobe kvm_intel")) << a.hint;
}

TEST(Checks, CreateVmBusyNamesOtherHypervisor) {
    HostFacts f = intel_host();
    f.create_vm = CallOutcome::failure(EBUSY);
    auto results = evaluate_host(f);
    const auto& c = get(results, "KVM_CREATE_VM");
    EXPECT_EQ(c.status, Status::Fail);
    EXPECT_TRUE(contains(c.detail, "EBUSY")) << c.detail;
    EXPECT_TRUE(contains(c.detail, "another hypervisor holds VT-x/AMD-V")) << c.detail;
    EXPECT_TRUE(contains(c.hint, "VirtualBox")) << c.hint;
    EXPECT_EQ(exit_code(results), 1);
}

TEST(Checks, CreateVmOtherError) {
    HostFacts f = intel_host();
    f.create_vm = CallOutcome::failure(ENOMEM);
    const auto& c = get(evaluate_host(f), "KVM_CREATE_VM");
    EXPECT_EQ(c.status, Status::Fail);
    EXPECT_TRUE(contains(c.detail, "ENOMEM")) << c.detail;
    EXPECT_FALSE(c.hint.empty());
}

TEST(Checks, WrongApiVersionFails) {
    HostFacts f = intel_host();
    f.api_version = CallOutcome::success(11);
    auto results = evaluate_host(f);
    const auto& v = get(results, "KVM API version");
    EXPECT_EQ(v.status, Status::Fail);
    EXPECT_TRUE(contains(v.detail, "11")) << v.detail;
    EXPECT_TRUE(contains(v.detail, "12")) << v.detail;
    EXPECT_EQ(exit_code(results), 1);
}

TEST(Checks, ApiVersionIoctlErrorFails) {
    HostFacts f = intel_host();
    f.api_version = CallOutcome::failure(EINVAL);
    EXPECT_EQ(get(evaluate_host(f), "KVM API version").status, Status::Fail);
}

TEST(Checks, EveryCapabilityHasOneLine) {
    auto results = evaluate_host(intel_host());
    for (const auto& spec : capability_specs()) {
        int n = 0;
        for (const auto& r : results) n += r.name == spec.name;
        EXPECT_EQ(n, spec.kind == CapabilityKind::Count ? 0 : 1) << spec.name;
    }
    for (const char* name : {"KVM_CAP_IRQCHIP", "KVM_CAP_PIT2", "KVM_CAP_IOEVENTFD", "KVM_CAP_IRQFD",
                             "KVM_CAP_IRQ_ROUTING", "KVM_CAP_SIGNAL_MSI", "KVM_CAP_USER_MEMORY",
                             "KVM_CAP_IMMEDIATE_EXIT", "KVM_CAP_SET_TSS_ADDR", "KVM_CAP_EXT_CPUID",
                             "KVM_CAP_MP_STATE", "KVM_CAP_VCPU_EVENTS", "KVM_CAP_COALESCED_MMIO",
                             "KVM_CAP_TSC_DEADLINE_TIMER", "KVM_CAP_X2APIC_API"})
        EXPECT_NE(find_check(results, name), nullptr) << name;
}

TEST(Checks, MissingRequiredCapabilityFails) {
    HostFacts f = intel_host();
    f.capabilities.erase("KVM_CAP_IRQCHIP");
    f.capabilities["KVM_CAP_IRQFD"] = 0;
    auto results = evaluate_host(f);
    for (const char* name : {"KVM_CAP_IRQCHIP", "KVM_CAP_IRQFD"}) {
        const auto& c = get(results, name);
        EXPECT_EQ(c.status, Status::Fail) << name;
        EXPECT_TRUE(contains(c.detail, "missing")) << c.detail;
        EXPECT_TRUE(contains(c.hint, "newer kernel")) << c.hint;
    }
    EXPECT_EQ(exit_code(results), 1);
}

TEST(Checks, MissingCapabilityOnPvmBlamesBackend) {
    HostFacts f = pvm_host();
    f.capabilities["KVM_CAP_PIT2"] = 0;
    const auto& c = get(evaluate_host(f), "KVM_CAP_PIT2");
    EXPECT_EQ(c.status, Status::Fail);
    EXPECT_TRUE(contains(c.hint, "PVM")) << c.hint;
}

TEST(Checks, MissingRecommendedCapabilityWarns) {
    HostFacts f = intel_host();
    f.capabilities["KVM_CAP_TSC_DEADLINE_TIMER"] = 0;
    f.capabilities["KVM_CAP_COALESCED_MMIO"] = 0;
    auto results = evaluate_host(f);
    EXPECT_EQ(get(results, "KVM_CAP_TSC_DEADLINE_TIMER").status, Status::Warn);
    EXPECT_EQ(get(results, "KVM_CAP_COALESCED_MMIO").status, Status::Warn);
    EXPECT_FALSE(get(results, "KVM_CAP_COALESCED_MMIO").hint.empty());
    EXPECT_EQ(overall_status(results), Status::Warn);
    EXPECT_EQ(exit_code(results), 0);
}

TEST(Checks, VcpuCountsAreReported) {
    auto results = evaluate_host(intel_host());
    const auto& v = get(results, "max vCPUs");
    EXPECT_EQ(v.status, Status::Pass);
    EXPECT_TRUE(contains(v.detail, "recommended 8")) << v.detail;
    EXPECT_TRUE(contains(v.detail, "maximum 1024")) << v.detail;
    EXPECT_TRUE(contains(get(results, "memory slots").detail, "32764")) << get(results, "memory slots").detail;
}

TEST(Checks, VcpuCountsFallBackToApiDefaults) {
    HostFacts f = intel_host();
    f.capabilities.erase("KVM_CAP_NR_VCPUS");
    f.capabilities.erase("KVM_CAP_MAX_VCPUS");
    const auto& v = get(evaluate_host(f), "max vCPUs");
    EXPECT_TRUE(contains(v.detail, "recommended 4")) << v.detail;
    EXPECT_TRUE(contains(v.detail, "maximum 4")) << v.detail;
}

TEST(Checks, MissingVhostNetWarns) {
    HostFacts f = intel_host();
    f.vhost_net = DeviceFacts{.path = "/dev/vhost-net"};
    auto results = evaluate_host(f);
    const auto& v = get(results, "/dev/vhost-net");
    EXPECT_EQ(v.status, Status::Warn);
    EXPECT_TRUE(contains(v.hint, "modprobe vhost_net")) << v.hint;
    EXPECT_EQ(exit_code(results), 0);
}

TEST(Checks, InaccessibleVhostNetWarns) {
    HostFacts f = intel_host();
    f.vhost_net.open_errno = EACCES;
    EXPECT_EQ(get(evaluate_host(f), "/dev/vhost-net").status, Status::Warn);
}

TEST(Checks, MissingTunWarns) {
    HostFacts f = intel_host();
    f.tun = DeviceFacts{.path = "/dev/net/tun"};
    auto results = evaluate_host(f);
    const auto& t = get(results, "/dev/net/tun");
    EXPECT_EQ(t.status, Status::Warn);
    EXPECT_TRUE(contains(t.hint, "modprobe tun")) << t.hint;
    EXPECT_EQ(exit_code(results), 0);
}

TEST(Checks, KernelVersion) {
    HostFacts f = intel_host();
    f.kernel_release = "2.6.19";
    EXPECT_EQ(get(evaluate_host(f), "kernel version").status, Status::Fail);
    f.kernel_release = "2.6.20";
    EXPECT_EQ(get(evaluate_host(f), "kernel version").status, Status::Pass);
    f.kernel_release = "6.18.44-fc-v669";
    EXPECT_EQ(get(evaluate_host(f), "kernel version").status, Status::Pass);
    EXPECT_TRUE(contains(get(evaluate_host(f), "kernel version").detail, "6.18.44-fc-v669"));
    f.kernel_release = "nonsense";
    EXPECT_EQ(get(evaluate_host(f), "kernel version").status, Status::Warn);
    f.kernel_release = "";
    EXPECT_EQ(get(evaluate_host(f), "kernel version").status, Status::Warn);
}

TEST(ParseKernelVersion, Forms) {
    EXPECT_EQ(parse_kernel_version("6.1.0-18-amd64"), (KernelVersion{6, 1, 0}));
    EXPECT_EQ(parse_kernel_version("6.18.44-fc-v669"), (KernelVersion{6, 18, 44}));
    EXPECT_EQ(parse_kernel_version("5.10"), (KernelVersion{5, 10, 0}));
    EXPECT_EQ(parse_kernel_version("6.8-rc1"), (KernelVersion{6, 8, 0}));
    EXPECT_EQ(parse_kernel_version("2.6.20"), (KernelVersion{2, 6, 20}));
    EXPECT_FALSE(parse_kernel_version(""));
    EXPECT_FALSE(parse_kernel_version("6"));
    EXPECT_FALSE(parse_kernel_version("6."));
    EXPECT_FALSE(parse_kernel_version("linux"));
    EXPECT_LT(*parse_kernel_version("2.6.19"), kMinimumKernel);
    EXPECT_GE(*parse_kernel_version("3.0"), kMinimumKernel);
}

TEST(ExitCode, OnlyFailuresCount) {
    EXPECT_EQ(exit_code({}), 0);
    EXPECT_EQ(overall_status({}), Status::Pass);
    std::vector<CheckResult> r = {{"a", Status::Pass, "", ""}};
    EXPECT_EQ(exit_code(r), 0);
    r.push_back({"b", Status::Warn, "", "h"});
    EXPECT_EQ(exit_code(r), 0);
    EXPECT_EQ(overall_status(r), Status::Warn);
    r.push_back({"c", Status::Fail, "", "h"});
    EXPECT_EQ(exit_code(r), 1);
    EXPECT_EQ(overall_status(r), Status::Fail);
    r.push_back({"d", Status::Warn, "", "h"});
    EXPECT_EQ(overall_status(r), Status::Fail);
}

TEST(Status, Names) {
    EXPECT_STREQ(to_string(Status::Pass), "PASS");
    EXPECT_STREQ(to_string(Status::Warn), "WARN");
    EXPECT_STREQ(to_string(Status::Fail), "FAIL");
}
