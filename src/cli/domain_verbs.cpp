// The management verbs: each asks kvmkitd (DaemonClient) and prints what
// virsh would print, or the daemon's JSON with --json.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "base/file.hpp"
#include "cli/verb_table.hpp"

namespace kvmkit::cli {

using http::Json;
using namespace std::chrono_literals;

namespace {

int fail_line(const std::string& message) {
    fprintf(stderr, "kvmkit: error: %s\n", message.c_str());
    return 1;
}

// Runs a daemon call; on error prints the one-line message and yields 1.
#define CALL(expr)                                       \
    ({                                                   \
        auto r_ = (expr);                                \
        if (!r_) return fail_line(r_.error().message()); \
        std::move(*r_);                                  \
    })

void print_json(const Json& j) {
    std::cout << j.dump(2) << "\n";
}

Json name_body(const std::string& name) {
    return Json{{"name", name}};
}

std::string str(const Json& j, const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::string query_name(const std::string& name) {
    return "?name=" + name;
}  // names are [A-Za-z0-9_.-]

// A simple verb: PUT domain.<op> {"name"} and print `done` with the name.
int simple_op(const Args& a, DaemonClient& c, const char* op, const char* done) {
    const std::string& name = a.positional[0];
    Json reply = CALL(c.put(std::string("domain.") + op, name_body(name)));
    if (a.json())
        print_json(reply);
    else
        printf(done, name.c_str());
    return 0;
}

// Waits until the domain leaves the active states; false on timeout.
bool wait_inactive(DaemonClient& c, const std::string& name, std::chrono::seconds timeout, std::string& state) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto info = c.get("domain.info" + query_name(name));
        if (!info) {
            state = info.error().message();
            return false;
        }
        state = str(*info, "state");
        if (state != "running" && state != "paused") return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(200ms);
    }
}

int list_verb(const Args& a, DaemonClient& c) {
    Json reply = CALL(c.get("domains"));
    Json shown = Json::array();
    for (const auto& vm : reply["vms"]) {
        std::string st = str(vm, "state");
        bool active = st == "running" || st == "paused";
        if (a.has("--all") || (a.has("--inactive") ? !active : active)) shown.push_back(vm);
    }
    if (a.json()) {
        print_json(shown);
        return 0;
    }
    if (a.has("--name")) {
        for (const auto& vm : shown) printf("%s\n", str(vm, "name").c_str());
        return 0;
    }
    size_t w = 4;
    for (const auto& vm : shown) w = std::max(w, str(vm, "name").size());
    printf(" %-7s %-*s   %-10s %s\n", "PID", int(w), "Name", "State", "Autostart");
    printf("%s\n", std::string(w + 34, '-').c_str());
    for (const auto& vm : shown) {
        std::string pid = vm["pid"].is_number() ? std::to_string(vm["pid"].get<long>()) : "-";
        printf(" %-7s %-*s   %-10s %s\n", pid.c_str(), int(w), str(vm, "name").c_str(), str(vm, "state").c_str(),
               vm.value("autostart", false) ? "yes" : "no");
    }
    return 0;
}

int define_verb(const Args& a, DaemonClient& c) {
    const std::string& file = a.positional[0];
    auto text = base::read_text_file(file);
    if (!text) return fail_line("define: " + text.error().message());
    Json doc;
    try {
        doc = Json::parse(*text);
    } catch (const Json::exception& e) {
        return fail_line("define: " + file + ": not valid JSON: " + e.what());
    }
    Json reply = CALL(c.put("domain.define", doc));
    if (a.json())
        print_json(reply);
    else
        printf("Domain '%s' defined from %s\n", str(reply, "name").c_str(), file.c_str());
    return 0;
}

int undefine_verb(const Args& a, DaemonClient& c) {
    const std::string& name = a.positional[0];
    Json reply = CALL(c.put("domain.undefine", Json{{"name", name}, {"force", a.has("--force")}}));
    if (a.json())
        print_json(reply);
    else
        printf("Domain '%s' has been undefined\n", name.c_str());
    return 0;
}

int start_verb(const Args& a, DaemonClient& c) {
    const std::string& name = a.positional[0];
    Json reply = CALL(c.put("domain.start", name_body(name)));
    if (a.json())
        print_json(reply);
    else
        printf("Domain '%s' started\n", name.c_str());
    if (!a.has("--console")) return 0;
    fflush(stdout);
    Json info = CALL(c.get("domain.info" + query_name(name)));
    return attach_console(name, str(info, "console_socket"));
}

int shutdown_verb(const Args& a, DaemonClient& c) {
    const std::string& name = a.positional[0];
    Json reply = CALL(c.put("domain.shutdown", name_body(name)));
    if (!a.has("--wait")) {
        if (a.json())
            print_json(reply);
        else
            printf("Domain '%s' is being shutdown\n", name.c_str());
        return 0;
    }
    long secs = std::atol(a.value("--wait").c_str());
    if (secs <= 0) secs = 300;
    std::string state;
    if (!wait_inactive(c, name, std::chrono::seconds(secs), state))
        return fail_line("domain '" + name + "' did not shut down within " + std::to_string(secs) +
                         " s (state: " + state + ")");
    if (a.json())
        print_json(Json{{"name", name}, {"state", state}});
    else
        printf("Domain '%s' is %s\n", name.c_str(), state.c_str());
    return 0;
}

int destroy_verb(const Args& a, DaemonClient& c) {
    return simple_op(a, c, "destroy", "Domain '%s' destroyed\n");
}
int reboot_verb(const Args& a, DaemonClient& c) {
    return simple_op(a, c, "reboot", "Domain '%s' is being rebooted\n");
}
int reset_verb(const Args& a, DaemonClient& c) {
    return simple_op(a, c, "reset", "Domain '%s' was reset\n");
}
int suspend_verb(const Args& a, DaemonClient& c) {
    return simple_op(a, c, "suspend", "Domain '%s' suspended\n");
}
int resume_verb(const Args& a, DaemonClient& c) {
    return simple_op(a, c, "resume", "Domain '%s' resumed\n");
}

int dominfo_verb(const Args& a, DaemonClient& c) {
    const std::string& name = a.positional[0];
    Json j = CALL(c.get("domain.info" + query_name(name)));
    if (a.json()) {
        print_json(j);
        return 0;
    }
    auto row = [](const char* k, const std::string& v) { printf("%-16s%s\n", k, v.c_str()); };
    row("Name:", str(j, "name"));
    row("PID:", j["pid"].is_number() ? std::to_string(j["pid"].get<long>()) : "-");
    row("State:", str(j, "state"));
    row("Reason:", str(j, "reason"));
    if (j.contains("cpus")) row("CPU(s):", std::to_string(j["cpus"].get<uint64_t>()));
    if (j.contains("memory")) row("Max memory:", std::to_string(j["memory"].get<uint64_t>() >> 10) + " KiB");
    row("Persistent:", "yes");
    row("Autostart:", j.value("autostart", false) ? "enable" : "disable");
    if (j.contains("console_socket")) row("Console:", str(j, "console_socket"));
    row("Log:", str(j, "log"));
    row("Definition:", str(j, "definition"));
    if (j.contains("config_error")) row("Config error:", str(j, "config_error"));
    return 0;
}

int domstate_verb(const Args& a, DaemonClient& c) {
    Json j = CALL(c.get("domain.info" + query_name(a.positional[0])));
    if (a.json())
        print_json(Json{{"state", j["state"]}, {"reason", j["reason"]}});
    else if (a.has("--reason"))
        printf("%s (%s)\n", str(j, "state").c_str(), str(j, "reason").c_str());
    else
        printf("%s\n", str(j, "state").c_str());
    return 0;
}

int dumpconfig_verb(const Args& a, DaemonClient& c) {
    Json j = CALL(c.get("domain.config" + query_name(a.positional[0])));
    print_json(j);
    return 0;
}

int autostart_verb(const Args& a, DaemonClient& c) {
    const std::string& name = a.positional[0];
    bool on = !a.has("--disable");
    Json reply = CALL(c.put("domain.autostart", Json{{"name", name}, {"autostart", on}}));
    if (a.json())
        print_json(reply);
    else
        printf(on ? "Domain '%s' marked as autostarted\n" : "Domain '%s' unmarked as autostarted\n", name.c_str());
    return 0;
}

// Asks on the terminal (or stdin) whether to re-open the editor.
bool ask_again() {
    fprintf(stderr, "Failed. Try again? [y,n]: ");
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return false;
    return line[0] == 'y' || line[0] == 'Y';
}

int edit_verb(const Args& a, DaemonClient& c) {
    const std::string& name = a.positional[0];
    Json current = CALL(c.get("domain.config" + query_name(name)));
    char tmpl[] = "/tmp/kvmkit-edit-XXXXXX.json";
    int fd = mkstemps(tmpl, 5);
    if (fd < 0) return fail_line(std::string("edit: cannot create a temporary file: ") + strerror(errno));
    close(fd);
    std::string path = tmpl;
    struct Cleanup {
        std::string p;
        ~Cleanup() { unlink(p.c_str()); }
    } cleanup{path};
    std::string original = current.dump(2) + "\n";
    std::string text = original;
    const char* editor = getenv("VISUAL");
    if (!editor || !*editor) editor = getenv("EDITOR");
    if (!editor || !*editor) editor = "vi";
    for (;;) {
        if (auto r = base::write_file_atomic(path, text, 0600); !r) return fail_line("edit: " + r.error().message());
        std::string cmd = std::string(editor) + " '" + path + "'";
        int st = system(cmd.c_str());
        if (st != 0)
            return fail_line(std::string("edit: the editor '") + editor + "' failed (status " + std::to_string(st) +
                             ")");
        auto edited = base::read_text_file(path);
        if (!edited) return fail_line("edit: " + edited.error().message());
        text = *edited;
        Json doc = Json::parse(text, nullptr, false);
        std::string problem;
        if (doc.is_discarded()) {
            problem = "not valid JSON";
        } else if (doc == current) {
            printf("Domain '%s' configuration not changed.\n", name.c_str());
            return 0;
        } else if (!doc.is_object() || !doc.contains("name") || doc["name"] != name) {
            problem = "\"name\" must stay \"" + name + "\" (define a copy under a new name instead)";
        } else {
            auto r = c.put("domain.define", doc);
            if (r) {
                printf("Domain '%s' configuration edited.\n", name.c_str());
                return 0;
            }
            problem = r.error().message();
        }
        fprintf(stderr, "kvmkit: error: %s\n", problem.c_str());
        if (!ask_again()) return fail_line("edit: changes not saved");
    }
}

std::string format_event(const Json& e) {
    return "event 'lifecycle' for domain '" + str(e, "vm") + "': " + str(e, "type") + " (" + str(e, "detail") + ")";
}

int event_verb(const Args& a, DaemonClient& c) {
    bool loop = a.has("--loop");
    long total = a.has("--timeout") ? std::atol(a.value("--timeout").c_str()) : -1;
    std::string domain = a.value("--domain");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(total);
    // Start from "now": ask for the current sequence with a zero-second poll.
    Json first = CALL(c.get("events?timeout=0"));
    uint64_t after = first["next"].get<uint64_t>();
    for (;;) {
        long wait = 30;
        if (total >= 0) {
            auto left =
                std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now()).count();
            if (left <= 0) return loop ? 0 : fail_line("event: no event within " + std::to_string(total) + " s");
            wait = std::min<long>(wait, left);
        }
        Json reply = CALL(c.get("events?after=" + std::to_string(after) + "&timeout=" + std::to_string(wait),
                                std::chrono::seconds(wait + 15)));
        for (const auto& e : reply["events"]) {
            after = std::max<uint64_t>(after, e["seq"].get<uint64_t>());
            if (!domain.empty() && str(e, "vm") != domain) continue;
            if (a.json())
                std::cout << e.dump() << "\n";
            else
                std::cout << format_event(e) << "\n";
            std::cout.flush();
            if (!loop) return 0;
        }
        after = std::max<uint64_t>(after, reply["next"].get<uint64_t>());
    }
}

int console_verb(const Args& a, DaemonClient& c) {
    const std::string& name = a.positional[0];
    Json info = CALL(c.get("domain.info" + query_name(name)));
    if (!info.contains("console_socket")) return fail_line("domain '" + name + "' is not running");
    return attach_console(name, str(info, "console_socket"));
}

int version_verb(const Args& a, DaemonClient& c);

}  // namespace

const std::vector<VerbSpec>& management_verbs() {
    static const std::vector<VerbSpec> verbs = {
        {"list",
         "Domain monitoring",
         "list domains",
         "[--all] [--inactive] [--name]",
         "Lists the running and paused domains; --all adds the inactive ones (shut off, crashed).",
         {},
         {{"--all", nullptr, "list inactive and active domains"},
          {"--inactive", nullptr, "list inactive domains only"},
          {"--name", nullptr, "list domain names only"}},
         list_verb},
        {"define",
         "Domain management",
         "define (but don't start) a domain from a JSON file",
         "<file>",
         "Validates the VM document in <file> (schema: docs/vm-config.md) and stores it as a domain.\n"
         "    An existing definition of the same name is replaced; a running domain uses it at its next start.",
         {"file"},
         {},
         define_verb},
        {"undefine",
         "Domain management",
         "undefine a domain",
         "<domain> [--force]",
         "Removes the definition of an inactive domain. A running domain is refused unless --force is\n"
         "    given, which destroys it first.",
         {"domain"},
         {{"--force", nullptr, "destroy the domain first if it is running"}},
         undefine_verb},
        {"start",
         "Domain management",
         "start a (previously defined) inactive domain",
         "<domain> [--console]",
         "Starts the domain as its own kvmkit-vmm process. Exactly one of two concurrent starts wins;\n"
         "    the other is refused.",
         {"domain"},
         {{"--console", nullptr, "attach to the console after starting"}},
         start_verb},
        {"shutdown",
         "Domain management",
         "gracefully shutdown a domain",
         "<domain> [--wait [SECONDS]]",
         "Presses the domain's ACPI power button; the guest shuts itself down. Without --wait it returns\n"
         "    at once, as virsh does.",
         {"domain"},
         {{"--wait", "SECONDS", "wait until the domain is shut off (default 300 s)"}},
         shutdown_verb},
        {"destroy",
         "Domain management",
         "destroy (stop) a domain",
         "<domain>",
         "Stops the domain at once (SIGTERM to its kvmkit-vmm, SIGKILL if that does not end it).\n"
         "    The guest gets no chance to shut down; the definition stays.",
         {"domain"},
         {},
         destroy_verb},
        {"reboot",
         "Domain management",
         "reboot a domain",
         "<domain>",
         "Presses the ACPI power button and starts the domain again once the guest has powered off\n"
         "    (libvirt's \"fake reboot\"): the guest shuts down cleanly first.",
         {"domain"},
         {},
         reboot_verb},
        {"reset",
         "Domain management",
         "reset a domain",
         "<domain>",
         "Resets the domain at once, like the reset button (no guest shutdown).",
         {"domain"},
         {},
         reset_verb},
        {"suspend",
         "Domain management",
         "suspend a domain",
         "<domain>",
         "Pauses the domain's vCPUs; it stays in memory.",
         {"domain"},
         {},
         suspend_verb},
        {"resume",
         "Domain management",
         "resume a domain",
         "<domain>",
         "Restarts the vCPUs of a paused domain.",
         {"domain"},
         {},
         resume_verb},
        {"dominfo",
         "Domain monitoring",
         "domain information",
         "<domain>",
         "Shows the state, process, CPUs, memory, autostart flag and files of a domain.",
         {"domain"},
         {},
         dominfo_verb},
        {"domstate",
         "Domain monitoring",
         "domain state",
         "<domain> [--reason]",
         "Prints the state: running, paused, shut off or crashed.",
         {"domain"},
         {{"--reason", nullptr, "also print the reason for the state"}},
         domstate_verb},
        {"dumpconfig",
         "Domain management",
         "domain configuration in JSON",
         "<domain>",
         "Prints the stored definition (docs/vm-config.md).",
         {"domain"},
         {},
         dumpconfig_verb},
        {"edit",
         "Domain management",
         "edit the JSON configuration for a domain",
         "<domain>",
         "Opens the definition in $VISUAL or $EDITOR (else vi), validates it when the editor exits and\n"
         "    saves it; on an error it offers to re-open the editor.",
         {"domain"},
         {},
         edit_verb},
        {"console",
         "Domain management",
         "connect to the guest console",
         "<domain>",
         "Attaches this terminal to the domain's console (raw mode); recent output is replayed.\n"
         "    Ctrl-] detaches; the domain keeps running.",
         {"domain"},
         {},
         console_verb},
        {"autostart",
         "Domain management",
         "autostart a domain",
         "<domain> [--disable]",
         "Marks the domain to be started when kvmkitd starts.",
         {"domain"},
         {{"--disable", nullptr, "disable autostarting"}},
         autostart_verb},
        {"event",
         "Domain events",
         "domain lifecycle events",
         "[--domain NAME] [--loop] [--timeout SECONDS]",
         "Waits for a lifecycle event (defined, undefined, started, suspended, resumed, shutdown,\n"
         "    stopped, crashed) and prints it; --loop keeps printing until interrupted or --timeout.",
         {},
         {{"--domain", "NAME", "only events of this domain"},
          {"--loop", nullptr, "print events until interrupted (or --timeout)"},
          {"--timeout", "SECONDS", "stop waiting after this many seconds"}},
         event_verb},
        {"version",
         "Host and hypervisor",
         "show version",
         "",
         "Prints the versions of kvmkit and of the kvmkitd it talks to.",
         {},
         {},
         version_verb},
    };
    return verbs;
}

namespace {
int version_verb(const Args& a, DaemonClient& c) {
    auto reply = c.get("version", 3s);
    if (a.json()) {
        print_json(Json{{"kvmkit", kKvmkitVersion}, {"kvmkitd", reply ? (*reply)["version"] : Json(nullptr)}});
        return 0;
    }
    printf("kvmkit %s\n", kKvmkitVersion);
    if (reply)
        printf("kvmkitd %s\n", str(*reply, "version").c_str());
    else
        printf("kvmkitd: not reachable (%s)\n", reply.error().message().c_str());
    return 0;
}
}  // namespace

const VerbSpec* find_verb(const std::string& name) {
    for (const auto& v : management_verbs())
        if (name == v.name) return &v;
    return nullptr;
}

namespace {
const std::vector<OptionSpec> kCommon = {
    {"--connect", "SOCKET", "kvmkitd's socket (default /run/kvmkit/kvmkitd.sock)"},
    {"--readonly", nullptr, "use the read-only socket (queries only)"},
    {"--json", nullptr, "print JSON for scripts"},
};
}  // namespace

bool parse_verb_args(const VerbSpec& verb, int argc, char** argv, int first, Args& out, std::string& error) {
    auto lookup = [&](const std::string& n) -> const OptionSpec* {
        for (const auto& o : verb.options)
            if (n == o.name) return &o;
        for (const auto& o : kCommon)
            if (n == o.name) return &o;
        return nullptr;
    };
    for (int i = first; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            out.options["--help"] = "";
            return true;
        }
        if (a == "-c") a = "--connect";
        if (a == "-r") a = "--readonly";
        if (a.rfind("--", 0) == 0 && a.size() > 2) {
            std::string value;
            bool inline_value = false;
            if (auto eq = a.find('='); eq != std::string::npos) {
                value = a.substr(eq + 1);
                a = a.substr(0, eq);
                inline_value = true;
            }
            const OptionSpec* o = lookup(a);
            if (!o) {
                error = "unknown option '" + a + "'";
                return false;
            }
            if (o->arg) {
                // --wait's value is optional (virsh style): take the next word only if it is a number.
                bool optional = std::string(o->name) == "--wait";
                if (!inline_value) {
                    if (i + 1 < argc && (!optional || std::isdigit(static_cast<unsigned char>(argv[i + 1][0])))) {
                        value = argv[++i];
                    } else if (!optional) {
                        error = "option '" + a + "' needs a value (" + o->arg + ")";
                        return false;
                    }
                }
            } else if (inline_value) {
                error = "option '" + a + "' takes no value";
                return false;
            }
            out.options[a] = value;
            continue;
        }
        out.positional.push_back(a);
    }
    if (out.positional.size() < verb.positionals.size()) {
        error = std::string("missing <") + verb.positionals[out.positional.size()] + ">";
        return false;
    }
    if (out.positional.size() > verb.positionals.size()) {
        error = "unexpected argument '" + out.positional[verb.positionals.size()] + "'";
        return false;
    }
    return true;
}

void print_verb_help(const VerbSpec& v, FILE* out) {
    fprintf(out, "  NAME\n    %s - %s\n\n  SYNOPSIS\n    kvmkit %s%s%s\n\n  DESCRIPTION\n    %s\n\n  OPTIONS\n", v.name,
            v.summary, v.name, *v.synopsis ? " " : "", v.synopsis, v.description);
    for (const char* p : v.positionals)
        fprintf(out, "    %-24s%s\n", (std::string("<") + p + ">").c_str(), *p == 'd' ? "domain name" : "file name");
    auto opt = [&](const OptionSpec& o) {
        std::string left = std::string(o.name) + (o.arg ? std::string(" ") + o.arg : "");
        fprintf(out, "    %-24s%s\n", left.c_str(), o.help);
    };
    for (const auto& o : v.options) opt(o);
    for (const auto& o : kCommon) opt(o);
    fputc('\n', out);
}

}  // namespace kvmkit::cli
