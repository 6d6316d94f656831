#include "cli/cli_main.hpp"

#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "check/check_command.hpp"

namespace kvmkit::cli {

namespace {
constexpr const char* kVersion = "0.1.0";

void usage(FILE* out) {
    fputs("Usage: kvmkit VERB [OPTIONS]\n"
          "\n"
          "Verbs:\n"
          "  run [OPTIONS]     run a VM in the foreground, console on this terminal\n"
          "                    (kvmkit run --help lists the options)\n"
          "  check [--json]    check that this host can run VMs, and say how to fix it if not\n"
          "  version           print the version\n"
          "  help              print this help\n",
          out);
}

// kvmkit-vmm sits next to this executable (build tree and install alike).
std::string vmm_path() {
    char self[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        std::string dir(self);
        dir = dir.substr(0, dir.rfind('/'));
        std::string p = dir + "/kvmkit-vmm";
        if (::access(p.c_str(), X_OK) == 0) return p;
    }
    return "kvmkit-vmm";  // fall back to $PATH
}

int run_verb(int argc, char** argv) {
    std::string path = vmm_path();
    std::vector<char*> args;
    args.push_back(const_cast<char*>("kvmkit-vmm"));
    for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
    args.push_back(nullptr);
    ::execvp(path.c_str(), args.data());
    fprintf(stderr, "kvmkit: error: cannot start %s: %s\n", path.c_str(), strerror(errno));
    return 1;
}

int check_verb(int argc, char** argv) {
    bool json = false;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--json") {
            json = true;
        } else if (a == "-h" || a == "--help") {
            puts("Usage: kvmkit check [--json]\n\nChecks CPU virtualization support, the KVM modules, /dev/kvm, the\n"
                 "KVM API and the capabilities kvmkit needs. Exit code 0 unless a check FAILs.");
            return 0;
        } else {
            fprintf(stderr, "kvmkit: error: check: unknown option '%s' (see kvmkit check --help)\n", a.c_str());
            return 2;
        }
    }
    return check::run_check_command(json, std::cout);
}
}  // namespace

int cli_main(int argc, char** argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    std::string verb = argv[1];
    if (verb == "run") return run_verb(argc, argv);
    if (verb == "check") return check_verb(argc, argv);
    if (verb == "version" || verb == "--version") {
        printf("kvmkit %s\n", kVersion);
        return 0;
    }
    if (verb == "help" || verb == "-h" || verb == "--help") {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "kvmkit: error: unknown verb '%s' (see kvmkit help)\n", verb.c_str());
    return 2;
}

}  // namespace kvmkit::cli
