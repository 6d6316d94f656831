// Thin RAII wrappers over the /dev/kvm API (Documentation/virt/kvm/api.rst).
// Methods are named after the ioctls they issue; nothing here knows about
// devices or guest layout.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace kvmkit::kvm {

using base::Result;

class Vm;

// A kvm_cpuid2 with its trailing entries, owned.
struct CpuidTable {
    std::vector<kvm_cpuid_entry2> entries;
    kvm_cpuid_entry2* find(uint32_t function, uint32_t index = 0);
    const kvm_cpuid_entry2* find(uint32_t function, uint32_t index = 0) const;
};

class Kvm {
public:
    static constexpr const char* kDevicePath = "/dev/kvm";
    static Result<Kvm> open(const char* path = kDevicePath);

    int fd() const { return fd_.get(); }
    Result<int> get_api_version() const;
    // KVM_CHECK_EXTENSION: 0 when absent, otherwise the capability's value.
    int check_extension(int cap) const;
    Result<int> get_vcpu_mmap_size() const;
    Result<CpuidTable> get_supported_cpuid() const;
    Result<std::vector<uint32_t>> get_msr_index_list() const;
    Result<Vm> create_vm() const;

private:
    explicit Kvm(base::UniqueFd fd) : fd_(std::move(fd)) {}
    base::UniqueFd fd_;
};

}  // namespace kvmkit::kvm
