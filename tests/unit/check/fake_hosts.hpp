// Fabricated HostFacts for the check tests: a healthy host of each kind,
// which each test then breaks in one way.
#pragma once

#include <string>
#include <vector>

#include "check/checks.hpp"
#include "check/host_facts.hpp"

namespace kvmkit::check::testing {

inline DeviceFacts good_device(std::string path, uint32_t major, uint32_t minor, uint32_t mode, uint32_t gid,
                               std::string group) {
    DeviceFacts d;
    d.path = std::move(path);
    d.exists = true;
    d.is_char_device = true;
    d.mode = mode;
    d.major = major;
    d.minor = minor;
    d.owner_uid = 0;
    d.owner_gid = gid;
    d.owner_name = "root";
    d.group_name = std::move(group);
    d.open_errno = 0;
    return d;
}

// A healthy Intel host with kvm_intel loaded, run by root.
inline HostFacts intel_host() {
    HostFacts f;
    f.cpu_flags = std::set<std::string>{"fpu", "vme", "lm", "vmx", "x2apic", "tsc_deadline_timer"};
    f.cpu_vendor = "GenuineIntel";
    f.cpu_model = "Intel(R) Xeon(R) Gold 6338";
    f.modules = {{"kvm", ModuleState::Loaded}, {"kvm_intel", ModuleState::Loaded}};
    f.kernel_release = "6.1.0-18-amd64";
    f.user.uid = 0;
    f.user.name = "root";
    f.user.gids = {0};
    f.kvm = good_device("/dev/kvm", 10, 232, 0660, 108, "kvm");
    f.api_version = CallOutcome::success(12);
    f.create_vm = CallOutcome::success(0);
    for (const auto& spec : capability_specs()) f.capabilities[spec.name] = 1;
    f.capabilities["KVM_CAP_NR_VCPUS"] = 8;
    f.capabilities["KVM_CAP_MAX_VCPUS"] = 1024;
    f.capabilities["KVM_CAP_NR_MEMSLOTS"] = 32764;
    f.tun = good_device("/dev/net/tun", 10, 200, 0666, 0, "root");
    f.vhost_net = good_device("/dev/vhost-net", 10, 238, 0660, 108, "kvm");
    return f;
}

inline HostFacts amd_host() {
    HostFacts f = intel_host();
    f.cpu_flags = std::set<std::string>{"fpu", "lm", "svm", "x2apic"};
    f.cpu_vendor = "AuthenticAMD";
    f.cpu_model = "AMD EPYC 7763 64-Core Processor";
    f.modules = {{"kvm", ModuleState::Loaded}, {"kvm_amd", ModuleState::Loaded}};
    return f;
}

// Like this project's machines: a VM without vmx/svm, KVM served by kvm_pvm
// (built in), no /dev/vhost-net.
inline HostFacts pvm_host() {
    HostFacts f = intel_host();
    f.cpu_flags = std::set<std::string>{"fpu", "lm", "hypervisor", "x2apic"};
    f.cpu_vendor = "AuthenticAMD";
    f.cpu_model = "AMD EPYC";
    f.modules = {{"kvm", ModuleState::BuiltIn}, {"kvm_pvm", ModuleState::BuiltIn}};
    f.kernel_release = "6.18.44-fc-v669";
    return f;
}

inline const CheckResult* find_check(const std::vector<CheckResult>& results, const std::string& name) {
    for (const auto& r : results)
        if (r.name == name) return &r;
    return nullptr;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace kvmkit::check::testing
