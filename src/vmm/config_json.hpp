// VmConfig as a JSON document: the one schema shared by `kvmkit-vmm --config`,
// the control API's vm.info and kvmkitd's stored definitions.
//
//   { "name": "web1", "kernel": "/boot/vmlinux", "initrd": "", "cmdline": "console=ttyS0",
//     "memory": "512M", "cpus": 1, "cpu": "auto", "no_reboot": false,
//     "disks": [ { "path": "/var/lib/img.raw", "readonly": false, "cache": "writeback" } ],
//     "nets": [ { "backend": "tap", "ifname": "", "vhost": false, "mac": "52:54:00:12:34:56" },
//               { "backend": "user", "hostfwd": [ "tcp:127.0.0.1:8080-:80" ] } ],
//     "rng": false, "console": "serial" }
//
// Every key is optional except none; unknown keys and wrong types are errors
// that name the key (a typo must not silently drop a disk).
#pragma once

#include <string>

#include "base/result.hpp"
#include "vmm/config.hpp"

namespace kvmkit::vmm {

// Parses and validates a JSON document into a VmConfig. An empty "kernel"
// means the default guest (filled in later by apply_default_guest).
base::Result<VmConfig> vm_config_from_json(const std::string& text);

// Serializes a VmConfig; vm_config_from_json(vm_config_to_json(c)) == c.
std::string vm_config_to_json(const VmConfig& config, int indent = 2);

// "512M", "4G", or a byte count when not a whole number of MiB.
std::string format_size(uint64_t bytes);

}  // namespace kvmkit::vmm
