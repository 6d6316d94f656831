#include "cli/cli_main.hpp"

#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "base/file.hpp"
#include "check/check_command.hpp"
#include "cli/verb_table.hpp"

namespace kvmkit::cli {

namespace {

void usage(FILE* out) {
    fputs(
        "Usage: kvmkit [--connect SOCKET] [--readonly] VERB [ARGS] [--json]\n"
        "\n"
        " Running a VM directly (no daemon):\n"
        "    run [OPTIONS]        run a VM in the foreground, console on this terminal\n"
        "                         (kvmkit run --help lists the options)\n"
        "    check [--json]       check that this host can run VMs, and say how to fix it if not\n",
        out);
    for (const char* group : {"Domain management", "Domain monitoring", "Domain events", "Host and hypervisor"}) {
        fprintf(out, "\n %s (through kvmkitd)\n", group);
        for (const auto& v : management_verbs())
            if (std::string(v.group) == group) fprintf(out, "    %-20s %s\n", v.name, v.summary);
    }
    fputs(
        "\n"
        "    help [VERB]          print this help, or the help of VERB (same as kvmkit VERB --help)\n"
        "\n"
        " Options for every daemon verb:\n"
        "    -c, --connect SOCKET kvmkitd's socket (default /run/kvmkit/kvmkitd.sock; queries fall back\n"
        "                         to /run/kvmkit/kvmkitd-ro.sock when the read-write socket is root's)\n"
        "    -r, --readonly       use the read-only socket\n"
        "    --json               print JSON instead of tables and messages\n"
        "\n"
        "Exit status: 0 on success; 1 with a one-line message on stderr when an operation fails;\n"
        "2 for a wrong command line.\n",
        out);
}

std::string vmm_path() {
    return base::sibling_executable("kvmkit-vmm");
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
            puts(
                "Usage: kvmkit check [--json]\n\nChecks CPU virtualization support, the KVM modules, /dev/kvm, the\n"
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

// Options before the verb (virsh style: `kvmkit -c SOCKET list`) are moved
// after it, where every daemon verb accepts them.
int management_verb(const VerbSpec& verb, int argc, char** argv, int verb_index, const std::vector<char*>& global) {
    std::vector<char*> args(argv, argv + argc);
    args.insert(args.end(), global.begin(), global.end());
    Args parsed;
    std::string error;
    if (!parse_verb_args(verb, static_cast<int>(args.size()), args.data(), verb_index + 1, parsed, error)) {
        fprintf(stderr, "kvmkit: error: %s: %s (see kvmkit %s --help)\n", verb.name, error.c_str(), verb.name);
        return 2;
    }
    if (parsed.has("--help")) {
        print_verb_help(verb, stdout);
        return 0;
    }
    DaemonClient client(parsed.value("--connect"), parsed.has("--readonly"));
    return verb.run(parsed, client);
}

int cli_main(int argc, char** argv) {
    std::vector<char*> global;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if ((a == "-c" || a == "--connect") && i + 1 < argc) {
            global.push_back(const_cast<char*>("--connect"));
            global.push_back(argv[++i]);
        } else if (a.rfind("--connect=", 0) == 0 || a == "-r" || a == "--readonly" || a == "--json") {
            global.push_back(argv[i]);
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    std::string verb = argv[i];
    if (verb == "run" && i == 1) return run_verb(argc, argv);
    if (verb == "check" && i == 1) return check_verb(argc, argv);
    if (verb == "--version") {
        printf("kvmkit %s\n", kKvmkitVersion);
        return 0;
    }
    if (verb == "help" || verb == "-h" || verb == "--help") {
        if (i + 1 < argc) {
            if (const VerbSpec* v = find_verb(argv[i + 1])) {
                print_verb_help(*v, stdout);
                return 0;
            }
            std::string w = argv[i + 1];
            if (w == "run") {
                char* a[] = {argv[0], const_cast<char*>("run"), const_cast<char*>("--help"), nullptr};
                return run_verb(3, a);
            }
            if (w == "check") {
                char* a[] = {argv[0], const_cast<char*>("check"), const_cast<char*>("--help"), nullptr};
                return check_verb(3, a);
            }
            fprintf(stderr, "kvmkit: error: help: unknown verb '%s' (see kvmkit help)\n", w.c_str());
            return 2;
        }
        usage(stdout);
        return 0;
    }
    if (const VerbSpec* v = find_verb(verb)) return management_verb(*v, argc, argv, i, global);
    fprintf(stderr, "kvmkit: error: unknown verb '%s' (see kvmkit help)\n", verb.c_str());
    return 2;
}

}  // namespace kvmkit::cli
