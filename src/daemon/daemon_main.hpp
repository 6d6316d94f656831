#pragma once

namespace kvmkit::daemon {

// kvmkitd: parses its options, re-adopts running VMs, autostarts, serves the
// read-write and read-only sockets until SIGTERM/SIGINT. VMs keep running
// when it exits (or is killed).
int daemon_main(int argc, char** argv);

}  // namespace kvmkit::daemon
