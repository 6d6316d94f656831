// probe_host(): gathers HostFacts from the running system — /proc/cpuinfo,
// /sys/module, uname, the process's credentials, and /dev/kvm through
// open + KVM_GET_API_VERSION, KVM_CREATE_VM and KVM_CHECK_EXTENSION for each
// capability in capability_specs(). It never fails: what cannot be read is
// recorded as such and judged by evaluate_host().
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "check/host_facts.hpp"

namespace kvmkit::check {

// Where the probe looks; tests point these at fabricated files.
struct ProbePaths {
    std::string cpuinfo = "/proc/cpuinfo";
    std::string sys_module = "/sys/module";
    // Built-in modules without parameters are missing from /sys/module; this
    // list names them. Empty: /lib/modules/<uname -r>/modules.builtin.
    std::string modules_builtin;
    std::string kvm = "/dev/kvm";
    std::string tun = "/dev/net/tun";
    std::string vhost_net = "/dev/vhost-net";
};

HostFacts probe_host(const ProbePaths& paths = {});

// The parsed first processor of /proc/cpuinfo.
struct CpuInfo {
    std::set<std::string> flags;
    std::string vendor;  // vendor_id
    std::string model;   // model name
};
CpuInfo parse_cpuinfo(std::string_view text);

// The state of one kernel module: /sys/module/<name>/initstate exists for
// loaded modules; a directory without it is a built-in module with parameters;
// otherwise `builtin_list` (modules.builtin text) may name it.
ModuleState probe_module(const std::string& sys_module, const std::string& name, std::string_view builtin_list);

// stat() and, when `try_open`, open(O_RDWR) one device node (closed again at once).
DeviceFacts probe_device(const std::string& path, bool try_open = true);

}  // namespace kvmkit::check
