// The configuration of one VM, as the command line (and later the control
// API and the daemon's definitions) describe it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/cpuid.hpp"
#include "net/net_options.hpp"
#include "virtio/devices/disk_image.hpp"

namespace kvmkit::vmm {

struct VmConfig {
    std::string name = "kvmkit";
    std::string kernel;
    std::string initrd;   // empty: none
    std::string cmdline;
    bool cmdline_set = false;  // cmdline was given (even empty): the default guest's is not used
    uint64_t memory = 512ull << 20;
    uint32_t cpus = 1;
    std::optional<arch::x86_64::CpuProfile> cpu_profile;  // nullopt: chosen from the host (auto)
    bool no_reboot = false;
    std::vector<virtio::DiskOptions> disks;  // virtio-blk, in order: vda, vdb, ...
    bool rng = false;                         // virtio-rng fed by getrandom(2)
    bool virtio_console = false;              // console input goes to virtio-console (hvc0), not COM1
    std::vector<net::NetOptions> nets;        // virtio-net NICs, in order (eth0, eth1, ...)
};

}  // namespace kvmkit::vmm
