#include "kvm/vcpu.hpp"

#include <sys/ioctl.h>

#include <cstring>

#include "kvm/uapi.hpp"

namespace kvmkit::kvm {

using base::fail_errno;

namespace {
template <typename T>
Result<T> get(int fd, unsigned long req, const char* name) {
    T v{};
    if (::ioctl(fd, req, &v) < 0) return fail_errno(name);
    return v;
}
template <typename T>
Result<void> set(int fd, unsigned long req, const T* v, const char* name) {
    if (::ioctl(fd, req, v) < 0) return fail_errno(name);
    return base::ok();
}
}  // namespace

Result<void> Vcpu::run() {
    if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            run_struct()->exit_reason = KVM_EXIT_INTR;
            return base::ok();
        }
        return fail_errno("KVM_RUN");
    }
    return base::ok();
}

void Vcpu::discard_coalesced_ring(long page_size) {
    // SAFETY: the ring is page KVM_COALESCED_MMIO_PAGE_OFFSET of the vCPU mapping when the capability exists.
    if (run_.size() < size_t(KVM_COALESCED_MMIO_PAGE_OFFSET + 1) * page_size) return;
    auto* ring = reinterpret_cast<kvm_coalesced_mmio_ring*>(run_.data() + KVM_COALESCED_MMIO_PAGE_OFFSET * page_size);
    __atomic_store_n(&ring->first, __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
}

Result<kvm_regs> Vcpu::get_regs() const { return get<kvm_regs>(fd_.get(), KVM_GET_REGS, "KVM_GET_REGS"); }
Result<void> Vcpu::set_regs(const kvm_regs& r) { return set(fd_.get(), KVM_SET_REGS, &r, "KVM_SET_REGS"); }
Result<kvm_sregs> Vcpu::get_sregs() const { return get<kvm_sregs>(fd_.get(), KVM_GET_SREGS, "KVM_GET_SREGS"); }
Result<void> Vcpu::set_sregs(const kvm_sregs& s) { return set(fd_.get(), KVM_SET_SREGS, &s, "KVM_SET_SREGS"); }
Result<kvm_fpu> Vcpu::get_fpu() const { return get<kvm_fpu>(fd_.get(), KVM_GET_FPU, "KVM_GET_FPU"); }
Result<void> Vcpu::set_fpu(const kvm_fpu& f) { return set(fd_.get(), KVM_SET_FPU, &f, "KVM_SET_FPU"); }
Result<kvm_lapic_state> Vcpu::get_lapic() const {
    return get<kvm_lapic_state>(fd_.get(), KVM_GET_LAPIC, "KVM_GET_LAPIC");
}
Result<void> Vcpu::set_lapic(const kvm_lapic_state& s) { return set(fd_.get(), KVM_SET_LAPIC, &s, "KVM_SET_LAPIC"); }
Result<kvm_mp_state> Vcpu::get_mp_state() const {
    return get<kvm_mp_state>(fd_.get(), KVM_GET_MP_STATE, "KVM_GET_MP_STATE");
}
Result<void> Vcpu::set_mp_state(uint32_t state) {
    kvm_mp_state s{};
    s.mp_state = state;
    return set(fd_.get(), KVM_SET_MP_STATE, &s, "KVM_SET_MP_STATE");
}
Result<kvm_vcpu_events> Vcpu::get_vcpu_events() const {
    return get<kvm_vcpu_events>(fd_.get(), KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS");
}
Result<void> Vcpu::set_vcpu_events(const kvm_vcpu_events& e) {
    return set(fd_.get(), KVM_SET_VCPU_EVENTS, &e, "KVM_SET_VCPU_EVENTS");
}

Result<kvm_translation> Vcpu::translate(uint64_t linear) const {
    kvm_translation t{};
    t.linear_address = linear;
    if (::ioctl(fd_.get(), KVM_TRANSLATE, &t) < 0) return fail_errno("KVM_TRANSLATE");
    return t;
}

Result<void> Vcpu::set_cpuid2(const CpuidTable& table) {
    std::vector<uint8_t> buf(sizeof(uapi::Cpuid2Header) + table.entries.size() * sizeof(kvm_cpuid_entry2));
    auto* c = reinterpret_cast<uapi::Cpuid2Header*>(buf.data());
    c->nent = table.entries.size();
    std::memcpy(buf.data() + sizeof *c, table.entries.data(), table.entries.size() * sizeof(kvm_cpuid_entry2));
    return set(fd_.get(), uapi::kSetCpuid2, c, "KVM_SET_CPUID2");
}

Result<void> Vcpu::set_msrs(const std::vector<kvm_msr_entry>& msrs) {
    std::vector<uint8_t> buf(sizeof(uapi::MsrsHeader) + msrs.size() * sizeof(kvm_msr_entry));
    auto* m = reinterpret_cast<uapi::MsrsHeader*>(buf.data());
    m->nmsrs = msrs.size();
    std::memcpy(buf.data() + sizeof *m, msrs.data(), msrs.size() * sizeof(kvm_msr_entry));
    int n = ::ioctl(fd_.get(), uapi::kSetMsrs, m);
    if (n < 0) return fail_errno("KVM_SET_MSRS");
    if (static_cast<size_t>(n) != msrs.size())
        return base::fail("KVM_SET_MSRS: MSR 0x" + [&] {
            char b[16];
            snprintf(b, sizeof b, "%x", msrs[n].index);
            return std::string(b);
        }() + " rejected");
    return base::ok();
}

}  // namespace kvmkit::kvm
