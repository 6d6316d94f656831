// The management verbs (virsh's names and habits): how each is called, its
// help text, and the function that runs it. cli_main dispatches through this
// table; `kvmkit help` and `kvmkit VERB --help` print from it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cli/daemon_client.hpp"

namespace kvmkit::cli {

constexpr const char* kKvmkitVersion = "0.1.0";

struct OptionSpec {
    const char* name;  // "--all"
    const char* arg;   // value placeholder ("SECONDS"), or nullptr for a flag
    const char* help;
};

struct Args {
    std::vector<std::string> positional;
    std::map<std::string, std::string> options;  // "--all" -> "" for flags
    bool has(const std::string& o) const { return options.count(o) != 0; }
    std::string value(const std::string& o, const std::string& fallback = "") const {
        auto it = options.find(o);
        return it == options.end() ? fallback : it->second;
    }
    bool json() const { return has("--json"); }
};

struct VerbSpec {
    const char* name;
    const char* group;     // "Domain management", "Domain monitoring", ...
    const char* summary;   // one line
    const char* synopsis;  // after the verb: "<domain> [--console]"
    const char* description;
    std::vector<const char*> positionals;  // required positional arguments, in order
    std::vector<OptionSpec> options;       // besides the common ones
    int (*run)(const Args&, DaemonClient&);
};

const std::vector<VerbSpec>& management_verbs();
const VerbSpec* find_verb(const std::string& name);

// Parses argv[first..] for `verb`; common options (--connect, --readonly,
// --json, --help) are accepted by every verb. Returns false with `error` set.
bool parse_verb_args(const VerbSpec& verb, int argc, char** argv, int first, Args& out, std::string& error);
void print_verb_help(const VerbSpec& verb, FILE* out);

// Console attach (console_attach.cpp): relays the terminal to the VM's
// console socket until Ctrl-] or the VM stops.
int attach_console(const std::string& name, const std::string& socket_path);

}  // namespace kvmkit::cli
