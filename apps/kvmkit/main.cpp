// kvmkit: the command-line client (virsh's role), plus `run` and `check`.
#include "cli/cli_main.hpp"

int main(int argc, char** argv) { return kvmkit::cli::cli_main(argc, argv); }
