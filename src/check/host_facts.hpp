// HostFacts: what `kvmkit check` knows about the host. probe_host()
// (probe.hpp) gathers it from the running system; evaluate_host() (checks.hpp)
// judges it without touching the system, so tests fabricate any host they like.
//
// A fact that was not gathered (because an earlier step failed, e.g. no
// /dev/kvm to ask) stays in its "not probed" state and the checks that need it
// are left out of the report rather than failed twice.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kvmkit::check {

enum class ModuleState { Absent, Loaded, BuiltIn };

// A device node such as /dev/kvm, /dev/net/tun or /dev/vhost-net.
struct DeviceFacts {
    std::string path{};
    bool exists = false;
    bool is_char_device = false;
    uint32_t mode = 0;  // permission bits (st_mode & 07777)
    uint32_t major = 0;
    uint32_t minor = 0;
    uint32_t owner_uid = 0;
    uint32_t owner_gid = 0;
    std::string owner_name{};  // "" when unknown
    std::string group_name{};  // "" when unknown
    // Outcome of open(O_RDWR): nullopt = not tried, 0 = opened, otherwise errno.
    std::optional<int> open_errno{};

    bool opened() const { return open_errno && *open_errno == 0; }
};

// The user running the check (the process's credentials).
struct UserFacts {
    uint32_t uid = 0;
    std::string name;
    std::vector<uint32_t> gids;  // effective gid and supplementary groups
    // The group database lists the user as a member of /dev/kvm's group. May be
    // true while `gids` lacks the group: added to it, not logged in again since.
    bool listed_in_kvm_group = false;
};

// The outcome of one ioctl: not attempted, failed with errno, or a value.
struct CallOutcome {
    bool attempted = false;
    int error = 0;  // errno when the call failed
    int value = 0;  // the call's result when error == 0

    bool ok() const { return attempted && error == 0; }
    static CallOutcome success(int v) { return {true, 0, v}; }
    static CallOutcome failure(int err) { return {true, err, 0}; }
};

struct HostFacts {
    // /proc/cpuinfo, first processor. cpu_flags is nullopt when unreadable.
    std::optional<std::set<std::string>> cpu_flags;
    std::string cpu_vendor;  // vendor_id: GenuineIntel, AuthenticAMD, ...
    std::string cpu_model;   // model name

    // kvm, kvm_intel, kvm_amd, kvm_pvm; a missing key means Absent.
    std::map<std::string, ModuleState> modules;
    std::string kernel_release;  // uname -r

    UserFacts user;
    DeviceFacts kvm{.path = "/dev/kvm"};
    CallOutcome api_version;  // KVM_GET_API_VERSION
    CallOutcome create_vm;    // KVM_CREATE_VM (value unused)
    // KVM_CHECK_EXTENSION by name ("KVM_CAP_IRQCHIP" -> 1); a missing name
    // reads as 0 (absent). Only meaningful when kvm.opened().
    std::map<std::string, int> capabilities;

    DeviceFacts tun{.path = "/dev/net/tun"};
    DeviceFacts vhost_net{.path = "/dev/vhost-net"};

    ModuleState module(const std::string& name) const {
        auto it = modules.find(name);
        return it == modules.end() ? ModuleState::Absent : it->second;
    }
    bool has_module(const std::string& name) const { return module(name) != ModuleState::Absent; }
    bool has_cpu_flag(const std::string& flag) const { return cpu_flags && cpu_flags->count(flag) != 0; }
    int capability(const std::string& name) const {
        auto it = capabilities.find(name);
        return it == capabilities.end() ? 0 : it->second;
    }
};

}  // namespace kvmkit::check
