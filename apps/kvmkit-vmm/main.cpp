// kvmkit-vmm: one process per VM (QEMU's role).
#include "vmm/vmm_main.hpp"

int main(int argc, char** argv) { return kvmkit::vmm::vmm_main(argc, argv); }
