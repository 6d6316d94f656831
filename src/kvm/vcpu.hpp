#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "base/mmap_region.hpp"
#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "kvm/kvm.hpp"

namespace kvmkit::kvm {

using base::Result;

class Vcpu {
public:
    Vcpu(int id, base::UniqueFd fd, base::MmapRegion run) : id_(id), fd_(std::move(fd)), run_(std::move(run)) {}

    int id() const { return id_; }
    int fd() const { return fd_.get(); }
    // The shared kvm_run page. SAFETY: valid while the Vcpu lives.
    kvm_run* run_struct() const { return reinterpret_cast<kvm_run*>(run_.data()); }

    // KVM_RUN; EINTR (a signal kicked us out) is reported as success with
    // exit_reason KVM_EXIT_INTR so the loop can look at its stop flag.
    Result<void> run();
    // Discards what KVM batched in the coalesced MMIO/PIO ring (used only for
    // write-only sinks such as the POST port, whose writes mean nothing).
    void discard_coalesced_ring(long page_size);
    void set_immediate_exit(bool v) { run_struct()->immediate_exit = v ? 1 : 0; }

    Result<kvm_regs> get_regs() const;
    Result<void> set_regs(const kvm_regs& r);
    Result<kvm_sregs> get_sregs() const;
    Result<void> set_sregs(const kvm_sregs& s);
    Result<kvm_fpu> get_fpu() const;
    Result<void> set_fpu(const kvm_fpu& f);
    Result<void> set_cpuid2(const CpuidTable& table);
    Result<void> set_msrs(const std::vector<kvm_msr_entry>& msrs);
    Result<kvm_lapic_state> get_lapic() const;
    Result<void> set_lapic(const kvm_lapic_state& s);
    Result<kvm_mp_state> get_mp_state() const;
    Result<void> set_mp_state(uint32_t state);
    Result<kvm_vcpu_events> get_vcpu_events() const;
    Result<void> set_vcpu_events(const kvm_vcpu_events& e);
    Result<kvm_translation> translate(uint64_t linear) const;

private:
    int id_;
    base::UniqueFd fd_;
    base::MmapRegion run_;
};

}  // namespace kvmkit::kvm
