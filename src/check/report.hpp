// Formatting of `kvmkit check` results.
//
// Text: one line per check, the name padded to the longest one, and for
// WARN/FAIL an indented hint line, then a summary line:
//   PASS  KVM API version     12
//   WARN  /dev/vhost-net      missing: ...
//         hint: load the in-kernel virtio-net backend: sudo modprobe vhost_net
//   result: WARN (27 passed, 1 warning, 0 failed)
//
// JSON: {"checks":[{"name":..,"status":"PASS","detail":..,"hint":..}, ...],
//        "result":"PASS"|"WARN"|"FAIL"} — "hint" is "" for PASS.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "check/checks.hpp"

namespace kvmkit::check {

void write_text(const std::vector<CheckResult>& results, std::ostream& out);
void write_json(const std::vector<CheckResult>& results, std::ostream& out);

}  // namespace kvmkit::check
