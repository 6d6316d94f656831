// VM names become file names (definitions, run directories, sockets, logs),
// so only a safe alphabet is accepted.
#pragma once

#include <string>

#include "base/result.hpp"

namespace kvmkit::daemon {

constexpr size_t kMaxVmNameLength = 64;

// 1-64 characters of [A-Za-z0-9_.-], starting with a letter or digit
// (so never "." or "..", never a hidden file, never an option).
base::Result<void> validate_vm_name(const std::string& name);

}  // namespace kvmkit::daemon
