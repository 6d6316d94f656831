#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace kvmkit::kvm {

using base::Result;

class Vcpu;

class Vm {
public:
    Vm(base::UniqueFd fd, int vcpu_mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {}

    int fd() const { return fd_.get(); }
    int check_extension(int cap) const;

    Result<void> set_tss_addr(uint64_t addr);
    Result<void> set_identity_map_addr(uint64_t addr);
    Result<void> create_irqchip();
    Result<void> create_pit2(uint32_t flags = 0);
    // SAFETY: host_addr must stay mapped for as long as the slot exists.
    Result<void> set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host_addr,
                                        uint32_t flags = 0);
    Result<void> irq_line(uint32_t gsi, bool level);
    Result<void> set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries);
    Result<void> irqfd(int eventfd, uint32_t gsi, bool deassign = false);
    Result<void> ioeventfd(int eventfd, uint64_t addr, uint32_t len, bool pio, bool deassign = false);
    Result<void> signal_msi(uint64_t address, uint32_t data);
    Result<void> enable_cap(uint32_t cap, uint64_t arg0 = 0, uint64_t arg1 = 0);
    Result<void> register_coalesced_pio(uint64_t port, uint32_t size);
    Result<void> set_clock(uint64_t ns);
    Result<Vcpu> create_vcpu(int id);

private:
    base::UniqueFd fd_;
    int vcpu_mmap_size_;
};

}  // namespace kvmkit::kvm
