#pragma once

namespace kvmkit::cli {

// `kvmkit VERB ...`: a thin client. `run` hands over to kvmkit-vmm (exec),
// `check` validates the host.
int cli_main(int argc, char** argv);

}  // namespace kvmkit::cli
