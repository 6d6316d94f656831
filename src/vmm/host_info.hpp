// Facts about the host the VMM adapts to.
#pragma once

#include <cstdint>

namespace kvmkit::vmm {

struct HostInfo {
    bool pvm = false;          // /dev/kvm is served by kvm_pvm: non-PVM guests run emulated
    uint64_t mem_total = 0;    // bytes, from /proc/meminfo (0: unknown)
};

HostInfo probe_host();

}  // namespace kvmkit::vmm
