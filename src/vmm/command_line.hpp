// The kvmkit-vmm command line (also reached as `kvmkit run`).
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "vmm/config.hpp"

namespace kvmkit::vmm {

struct ParsedCommandLine {
    VmConfig config;
    bool help = false;     // --help was given: `text` holds the usage
    std::string text;
    std::string log_level = "warn";
    // Process options (allowed with --config, not part of the VM's schema):
    std::string api_socket;      // --api-socket: the control API (docs/control-api.md)
    std::string console_socket;  // --console-socket: the console on a UNIX socket
    bool cmdline_given = false;  // --cmdline was on the command line (even if empty)
};

// Parses arguments (without argv[0]). Unknown flags and bad values are errors.
base::Result<ParsedCommandLine> parse_command_line(const std::vector<std::string>& args);

// Where the default guest lives: $KVMKIT_CACHE (default /var/cache/kvmkit)/guest.
std::string default_guest_dir();

// Fills kernel/initrd/cmdline from the default guest when no --kernel was given.
base::Result<void> apply_default_guest(VmConfig& cfg, bool cmdline_given);

}  // namespace kvmkit::vmm
