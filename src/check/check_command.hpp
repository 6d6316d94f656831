// `kvmkit check`: host validation (in the spirit of virt-host-validate and
// kvm-ok). The CLI parses `--json` and calls run_check_command().
#pragma once

#include <ostream>

namespace kvmkit::check {

// Probes this host, prints one line per check (or JSON when `json`) to `out`,
// and returns the exit code: 1 when any check FAILs, 0 otherwise (warnings
// included).
int run_check_command(bool json, std::ostream& out);

}  // namespace kvmkit::check
