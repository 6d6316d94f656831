// An IrqLine wired to a GSI of the in-kernel irqchip through KVM_IRQ_LINE.
#pragma once

#include "base/log.hpp"
#include "bus/bus.hpp"
#include "kvm/vm.hpp"

namespace kvmkit::vmm {

class KvmIrqLine : public bus::IrqLine {
public:
    KvmIrqLine(kvm::Vm& vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
    void set_level(bool high) override {
        if (auto r = vm_.irq_line(gsi_, high); !r) LOG_WARN("irq %u: %s", gsi_, r.error().message().c_str());
    }

private:
    kvm::Vm& vm_;
    uint32_t gsi_;
};

}  // namespace kvmkit::vmm
