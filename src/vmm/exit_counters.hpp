// VM exits counted by reason, per vCPU. Each vCPU thread is the only writer
// of its own row (a relaxed load + store, no locked instruction on the exit
// path); readers (the control API) sum relaxed loads, so a snapshot may be a
// few exits behind, never torn.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kvmkit::vmm {

class ExitCounters {
public:
    static constexpr uint32_t kReasons = 64;  // KVM_EXIT_* numbers; larger ones count as "OTHER"

    explicit ExitCounters(size_t vcpus) : rows_(std::make_unique<Row[]>(vcpus)), vcpus_(vcpus) {}

    void count(size_t vcpu, uint32_t reason) {
        auto& c = rows_[vcpu].n[reason < kReasons ? reason : kReasons];
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }

    // Reason name ("IO", "MMIO", "HLT", ...) -> count; only reasons seen.
    std::map<std::string, uint64_t> for_vcpu(size_t vcpu) const;
    std::map<std::string, uint64_t> totals() const;
    size_t vcpus() const { return vcpus_; }

private:
    struct alignas(64) Row {  // one cache line set per vCPU: no false sharing between vCPU threads
        std::atomic<uint64_t> n[kReasons + 1] = {};
    };
    std::unique_ptr<Row[]> rows_;
    size_t vcpus_;
};

}  // namespace kvmkit::vmm
