// The checks of `kvmkit check` (host validation in the spirit of libvirt's
// virt-host-validate and Ubuntu's kvm-ok): a pure function from HostFacts to a
// list of results, so every verdict and hint is testable with fabricated hosts.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "check/host_facts.hpp"

namespace kvmkit::check {

enum class Status { Pass, Warn, Fail };

// "PASS", "WARN", "FAIL".
const char* to_string(Status s);

struct CheckResult {
    std::string name;    // e.g. "/dev/kvm access", "KVM_CAP_IRQCHIP"
    Status status = Status::Pass;
    std::string detail;  // what was found, one line
    std::string hint;    // what to do about it; empty for PASS
};

// How kvmkit depends on a KVM capability.
enum class CapabilityKind {
    Required,     // kvmkit cannot run a VM without it: FAIL when missing
    Recommended,  // kvmkit works without it, worse: WARN when missing
    Count,        // a number, reported by the "max vCPUs"/"memory slots" lines
};

struct CapabilitySpec {
    int id;            // KVM_CAP_* value for KVM_CHECK_EXTENSION
    const char* name;  // "KVM_CAP_IRQCHIP"; also the check's name
    CapabilityKind kind;
    const char* use;      // what kvmkit uses it for
    const char* without;  // Recommended only: what happens without it
};

// Every capability kvmkit relies on, in report order. The probe queries each.
std::span<const CapabilitySpec> capability_specs();

// All checks, in report order. Checks whose facts were not gathered (e.g. the
// API version when /dev/kvm could not be opened) are left out.
std::vector<CheckResult> evaluate_host(const HostFacts& facts);

// The worst status (Pass for an empty list).
Status overall_status(const std::vector<CheckResult>& results);

// The process exit code: 1 when any check FAILs, else 0 (warnings pass).
int exit_code(const std::vector<CheckResult>& results);

struct KernelVersion {
    int major = 0;
    int minor = 0;
    int patch = 0;
    auto operator<=>(const KernelVersion&) const = default;
};

// Parses the leading "X.Y[.Z]" of a release such as "6.1.0-18-amd64".
std::optional<KernelVersion> parse_kernel_version(std::string_view release);

// The oldest kernel with KVM (2.6.20).
inline constexpr KernelVersion kMinimumKernel{2, 6, 20};
// KVM_GET_API_VERSION has returned 12 since Linux 2.6.22; other values mean an
// incompatible API (Documentation/virt/kvm/api.rst, 4.1).
inline constexpr int kKvmApiVersion = 12;

}  // namespace kvmkit::check
