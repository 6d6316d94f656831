#include "vmm/exit_counters.hpp"

#include "vmm/exit_dispatch.hpp"

namespace kvmkit::vmm {

std::map<std::string, uint64_t> ExitCounters::for_vcpu(size_t vcpu) const {
    std::map<std::string, uint64_t> out;
    if (vcpu >= vcpus_) return out;
    for (uint32_t r = 0; r <= kReasons; ++r) {
        uint64_t n = rows_[vcpu].n[r].load(std::memory_order_relaxed);
        if (!n) continue;
        std::string name = r == kReasons ? "OTHER" : exit_reason_name(r);
        if (name == "?") name = "EXIT_" + std::to_string(r);
        out[name] += n;
    }
    return out;
}

std::map<std::string, uint64_t> ExitCounters::totals() const {
    std::map<std::string, uint64_t> out;
    for (size_t v = 0; v < vcpus_; ++v)
        for (const auto& [name, n] : for_vcpu(v)) out[name] += n;
    return out;
}

}  // namespace kvmkit::vmm
