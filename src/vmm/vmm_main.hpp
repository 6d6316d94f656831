#pragma once

namespace kvmkit::vmm {

// The whole kvmkit-vmm process: parse, build, run, reboot on reset, exit.
// Exit codes: 0 guest powered off (or reset with --no-reboot, or quit/SIGTERM),
// 1 error, 2 bad command line.
int vmm_main(int argc, char** argv);

}  // namespace kvmkit::vmm
