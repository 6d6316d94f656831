// kvmkitd: the management daemon (libvirtd's role).
#include "daemon/daemon_main.hpp"

int main(int argc, char** argv) {
    return kvmkit::daemon::daemon_main(argc, argv);
}
