// kvmkitd and the kvmkit CLI end to end: a real daemon on temporary
// directories, real kvmkit-vmm processes, the project's test guest (it boots
// in well under a second) and, once, the default Linux guest.
#include <gtest/gtest.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "guest_assets.hpp"
#include "http/client.hpp"
#include "kvmkitd_harness.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

// The test guest runs no checks, then counts "KT: tick N" on COM1 until the
// ACPI power button (or forever): proof that vCPUs run, and stop when paused.
const std::string kTicking = "tests=none tick=200 pwrbtn=1";

#define START_DAEMON(d)                         \
    do {                                        \
        std::string why_d;                      \
        ASSERT_TRUE((d).start(why_d)) << why_d; \
    } while (0)

#define EXPECT_CLI_OK(r) EXPECT_EQ((r).code, 0) << "stdout: " << (r).out << "\nstderr: " << (r).err

// The highest "KT: tick N" in `text`, or -1.
long last_tick(const std::string& text) {
    long best = -1;
    static const std::regex re("KT: tick ([0-9]+)");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
        best = std::max(best, std::stol((*it)[1]));
    return best;
}

// A one-line message on stderr, nothing on stdout.
void expect_one_line_error(const CliResult& r, const std::string& needle) {
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("kvmkit: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST(KvmkitCli, HelpReadsLikeVirsh) {
    auto all = run_kvmkit({"--help"});
    EXPECT_EQ(all.code, 0);
    for (const char* verb : {"list",    "define",    "undefine", "start",   "shutdown", "destroy",    "reboot",
                             "reset",   "suspend",   "resume",   "dominfo", "domstate", "dumpconfig", "edit",
                             "console", "autostart", "event",    "version", "run",      "check"})
        EXPECT_NE(all.out.find(std::string("    ") + verb + " "), std::string::npos) << verb << "\n" << all.out;
    auto start = run_kvmkit({"start", "--help"});
    EXPECT_EQ(start.code, 0);
    EXPECT_NE(start.out.find("  SYNOPSIS\n    kvmkit start <domain> [--console]"), std::string::npos) << start.out;
    EXPECT_NE(start.out.find("--connect SOCKET"), std::string::npos) << start.out;
    EXPECT_EQ(run_kvmkit({"help", "shutdown"}).out, run_kvmkit({"shutdown", "--help"}).out);

    auto bad = run_kvmkit({"frobnicate"});
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("unknown verb 'frobnicate'"), std::string::npos);
    auto missing = run_kvmkit({"start"});
    EXPECT_EQ(missing.code, 2);
    EXPECT_NE(missing.err.find("start: missing <domain>"), std::string::npos) << missing.err;
    auto unknown = run_kvmkit({"list", "--bogus"});
    EXPECT_EQ(unknown.code, 2);
    EXPECT_NE(unknown.err.find("unknown option '--bogus'"), std::string::npos) << unknown.err;
}

TEST(KvmkitCli, NoDaemonIsAOneLineError) {
    TempDir tmp;
    auto r = run_kvmkit({"--connect", tmp.path() + "/nothing.sock", "list"});
    expect_one_line_error(r, "is kvmkitd running?");
}

TEST(Kvmkitd, MalformedDefinitionsAreRefusedWithClearErrors) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    struct Case {
        const char* file;
        const char* text;
        const char* error;
    } cases[] = {
        {"notjson", "{\"name\": \"a\",", "not valid JSON"},
        {"typo", "{\"name\": \"a\", \"memroy\": \"64M\"}", "\"memroy\": unknown key"},
        {"type", "{\"name\": \"a\", \"cpus\": \"two\"}", "\"cpus\": expected a non-negative integer"},
        {"disk", "{\"name\": \"a\", \"disks\": [{\"path\": \"/x\", \"cache\": \"fast\"}]}", "\"disks[0].cache\""},
        {"noname", "{\"memory\": \"64M\"}", "\"name\": missing"},
        {"dotdot", "{\"name\": \"../etc/passwd\"}", "must start with a letter or a digit"},
        {"slash", "{\"name\": \"a/b\"}", "may only contain letters"},
        {"dot", "{\"name\": \".hidden\"}", "must start with a letter or a digit"},
        {"array", "[1, 2]", "expected a JSON object"},
    };
    for (const auto& c : cases) {
        auto r = d.cli({"define", d.write_definition(c.file, c.text)});
        SCOPED_TRACE(c.file);
        expect_one_line_error(r, c.error);
    }
    auto missing = d.cli({"define", "/nonexistent/vm.json"});
    expect_one_line_error(missing, "/nonexistent/vm.json");
    auto list = d.cli({"list", "--all", "--name"});
    EXPECT_CLI_OK(list);
    EXPECT_EQ(list.out, "");  // nothing was stored
    auto unknown = d.cli({"start", "nosuchvm"});
    expect_one_line_error(unknown, "domain 'nosuchvm' is not defined");
}

// Requests from other clients than kvmkit: wrong shapes get a 4xx with a
// JSON error, and the daemon goes on serving.
TEST(Kvmkitd, MalformedRequestsGetA4xxAndTheDaemonGoesOn) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    struct Case {
        const char* method;
        const char* path;
        std::optional<http::Json> body;
        int status;
        const char* error;
    } cases[] = {
        {"PUT", "/api/v1/domain.start", http::Json{{"name", 5}}, 400, "string \"name\""},
        {"PUT", "/api/v1/domain.start", std::nullopt, 400, "string \"name\""},
        {"PUT", "/api/v1/domain.autostart", http::Json{{"name", "x"}, {"autostart", "yes"}}, 400, "true or false"},
        {"PUT", "/api/v1/domain.define", http::Json::array(), 400, "expected a JSON object"},
        {"GET", "/api/v1/domain.info", std::nullopt, 404, "is not defined"},
        {"GET", "/api/v1/events?after=abc", std::nullopt, 400, ""},
        {"GET", "/api/v1/events?timeout=99999", std::nullopt, 400, "timeout"},
        {"GET", "/api/v1/nothing", std::nullopt, 404, ""},
        {"DELETE", "/api/v1/domains", std::nullopt, 405, ""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.method) + " " + c.path);
        auto r = http::request(d.socket(), c.method, c.path, c.body, 10s);
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->status, c.status) << r->body;
        EXPECT_TRUE(r->json.is_object() && r->json.contains("error")) << r->body;
        EXPECT_NE(r->error_message().find(c.error), std::string::npos) << r->body;
    }
    auto raw = http::exchange_raw(d.socket(), "GARBAGE\r\n\r\n", 10s);
    ASSERT_TRUE(raw);
    EXPECT_EQ(raw->rfind("HTTP/1.1 4", 0), 0u) << *raw;
    EXPECT_CLI_OK(d.cli({"list"}));
}

TEST(Kvmkitd, DefineStoresAtomicallyAndDumpconfigRoundTrips) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    auto r = d.cli({"define", d.write_definition("v", d.testguest_definition("v1", kTicking))});
    EXPECT_CLI_OK(r);
    EXPECT_NE(r.out.find("Domain 'v1' defined from"), std::string::npos);
    std::string stored = d.state_dir() + "/vms/v1.json";
    struct stat st {};
    ASSERT_EQ(stat(stored.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto dump = d.cli({"dumpconfig", "v1"});
    EXPECT_CLI_OK(dump);
    EXPECT_NE(dump.out.find("\"memory\": \"64M\""), std::string::npos) << dump.out;
    EXPECT_NE(dump.out.find("\"cmdline\": \"" + kTicking + "\""), std::string::npos) << dump.out;
    // What dumpconfig prints defines the same VM again.
    auto again = d.cli({"define", d.write_definition("again", dump.out)});
    EXPECT_CLI_OK(again);
    auto state = d.cli({"domstate", "v1", "--reason"});
    EXPECT_EQ(state.out, "shut off (unknown)\n");
    auto info = d.cli({"dominfo", "v1"});
    EXPECT_CLI_OK(info);
    EXPECT_NE(info.out.find("Max memory:     65536 KiB"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("Autostart:      disable"), std::string::npos) << info.out;
    // No temporary files are left next to the definitions.
    auto ls = run_kvmkit({"--connect", d.socket(), "list", "--all", "--json"});
    EXPECT_NE(ls.out.find("\"name\": \"v1\""), std::string::npos);
}

// define -> start -> console shows the guest -> suspend/resume (ticks stop and
// continue) -> shutdown by the power button -> start again -> destroy; the
// event stream sees every step.
TEST(Kvmkitd, LifecycleWithTestGuest) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    auto events = VmProcess::command({KVMKIT_BIN, "--connect", d.socket(), "event", "--loop", "--timeout", "900"});
    // `event` reports what happens after it subscribed: define a probe VM until
    // its event shows up, then everything about "life" is seen.
    for (int i = 0; i < 100 && !events.wait_for("domain 'probe'", 100ms); ++i)
        EXPECT_CLI_OK(d.cli({"define", d.write_definition("probe", d.testguest_definition("probe", kTicking))}));
    ASSERT_TRUE(events.wait_for("event 'lifecycle' for domain 'probe': defined", 10s)) << events.output();

    EXPECT_CLI_OK(d.cli({"define", d.write_definition("life", d.testguest_definition("life", kTicking))}));
    auto start = d.cli({"start", "life"});
    EXPECT_CLI_OK(start);
    EXPECT_EQ(start.out, "Domain 'life' started\n");
    EXPECT_EQ(d.cli({"domstate", "life", "--reason"}).out, "running (booted)\n");
    auto pid = d.vm_pid("life");
    ASSERT_TRUE(pid.has_value());
    EXPECT_TRUE(process_alive(*pid));

    // The console replays what the guest printed before we attached, and goes on.
    auto console = VmProcess::command({KVMKIT_BIN, "--connect", d.socket(), "console", "life"});
    ASSERT_TRUE(console.wait_for("Connected to domain 'life'", 30s)) << console.errors();
    ASSERT_TRUE(console.wait_for("KT: start kvmkit-testguest", 60s)) << console.output() << console.errors();
    ASSERT_TRUE(console.wait_for("KT: tick 3", 60s)) << console.output();

    // Paused: no tick comes while the vCPUs are stopped (one may have been in flight).
    EXPECT_CLI_OK(d.cli({"suspend", "life"}));
    EXPECT_EQ(d.cli({"domstate", "life", "--reason"}).out, "paused (user)\n");
    long at_pause = last_tick(console.output());
    std::this_thread::sleep_for(3s);
    long while_paused = last_tick(console.output());
    EXPECT_LE(while_paused, at_pause + 1) << "the guest kept counting while paused";
    EXPECT_CLI_OK(d.cli({"resume", "life"}));
    EXPECT_EQ(d.cli({"domstate", "life", "--reason"}).out, "running (unpaused)\n");
    ASSERT_TRUE(console.wait_for("KT: tick " + std::to_string(while_paused + 2), 60s)) << console.output();

    // Ctrl-] detaches; the VM keeps running.
    console.send("\x1d");
    EXPECT_EQ(console.wait_exit(30s), 0);
    EXPECT_EQ(d.cli({"domstate", "life"}).out, "running\n");

    // Graceful shutdown: the power button, the guest powers off.
    auto shut = d.cli({"shutdown", "life", "--wait", "120"});
    EXPECT_CLI_OK(shut);
    EXPECT_EQ(d.cli({"domstate", "life", "--reason"}).out, "shut off (shutdown)\n");
    EXPECT_FALSE(process_alive(*pid));
    EXPECT_FALSE(d.vm_pid("life").has_value()) << "the pid file outlived the VM";

    // Again, then destroy.
    EXPECT_CLI_OK(d.cli({"start", "life"}));
    EXPECT_TRUE(wait_state(d, "life", "running", 10s));
    auto destroy = d.cli({"destroy", "life"});
    EXPECT_CLI_OK(destroy);
    EXPECT_EQ(destroy.out, "Domain 'life' destroyed\n");
    EXPECT_EQ(d.cli({"domstate", "life", "--reason"}).out, "shut off (destroyed)\n");
    // Operations that need a running VM say so.
    expect_one_line_error(d.cli({"suspend", "life"}), "domain 'life' is not running");
    expect_one_line_error(d.cli({"destroy", "life"}), "domain 'life' is not running");

    ASSERT_TRUE(events.wait_for("stopped (destroyed)", 30s)) << events.output() << events.errors();
    std::string ev = events.output();
    const char* expected[] = {"defined (added)",     "started (booted)",   "suspended (paused)", "resumed (unpaused)",
                              "shutdown (finished)", "stopped (shutdown)", "started (booted)",   "stopped (destroyed)"};
    size_t pos = 0;
    for (const char* e : expected) {
        auto at = ev.find("event 'lifecycle' for domain 'life': " + std::string(e), pos);
        ASSERT_NE(at, std::string::npos) << "missing or out of order: " << e << "\n" << ev;
        pos = at + 1;
    }
}

// reboot: power button, the guest powers off, kvmkitd starts a new VMM.
// reset: vm.reboot, the same VMM builds the machine again.
TEST(Kvmkitd, RebootAndReset) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    EXPECT_CLI_OK(d.cli({"define", d.write_definition("r", d.testguest_definition("r", kTicking))}));
    EXPECT_CLI_OK(d.cli({"start", "r"}));
    auto first = d.vm_pid("r");
    ASSERT_TRUE(first);
    {
        auto console = VmProcess::command({KVMKIT_BIN, "--connect", d.socket(), "console", "r"});
        ASSERT_TRUE(console.wait_for("KT: pwrbtn armed", 60s)) << console.output() << console.errors();
        console.send("\x1d");
        EXPECT_EQ(console.wait_exit(30s), 0);
    }
    auto reboot = d.cli({"reboot", "r"});
    EXPECT_CLI_OK(reboot);
    EXPECT_EQ(reboot.out, "Domain 'r' is being rebooted\n");
    std::optional<pid_t> second;
    for (int i = 0; i < 600; ++i) {
        second = d.vm_pid("r");
        if (second && *second != *first && d.cli({"domstate", "r", "--reason"}).out == "running (rebooted)\n") break;
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(second && *second != *first) << d.daemon_log();
    EXPECT_EQ(d.cli({"domstate", "r", "--reason"}).out, "running (rebooted)\n");
    EXPECT_FALSE(process_alive(*first));

    // Reset: same process, the guest starts from the beginning (its console shows a second start line).
    auto console = VmProcess::command({KVMKIT_BIN, "--connect", d.socket(), "console", "r"});
    ASSERT_TRUE(console.wait_for("KT: pwrbtn armed", 60s)) << console.output();
    size_t starts = count_of(console.output(), "KT: start kvmkit-testguest");
    auto reset = d.cli({"reset", "r"});
    EXPECT_CLI_OK(reset);
    EXPECT_EQ(reset.out, "Domain 'r' was reset\n");
    bool restarted = false;
    for (int i = 0; i < 600 && !restarted; ++i) {
        restarted = count_of(console.output(), "KT: start kvmkit-testguest") > starts;
        if (!restarted) std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(restarted) << console.output();
    EXPECT_EQ(d.vm_pid("r"), second);
    EXPECT_EQ(d.cli({"domstate", "r"}).out, "running\n");
    console.send("\x1d");
    EXPECT_EQ(console.wait_exit(30s), 0);
    EXPECT_CLI_OK(d.cli({"destroy", "r"}));
}

// On a terminal, `kvmkit console` is raw (every key goes to the guest) and
// Ctrl-] detaches, restoring the terminal; the VM keeps running.
TEST(Kvmkitd, ConsoleOnATerminalIsRawAndCtrlRightBracketDetaches) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    EXPECT_CLI_OK(d.cli({"define", d.write_definition("tty", d.testguest_definition("tty", kTicking))}));
    EXPECT_CLI_OK(d.cli({"start", "tty"}));
    const std::string sock = d.socket();  // before fork: the child only execs
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        execl(KVMKIT_BIN, KVMKIT_BIN, "--connect", sock.c_str(), "console", "tty", static_cast<char*>(nullptr));
        _exit(127);
    }
    std::string out;
    ASSERT_TRUE(read_fd_until(master, out, "Escape character is ^]", 30s)) << out;
    ASSERT_TRUE(read_fd_until(master, out, "KT: tick", 60s)) << out;
    termios t{};
    ASSERT_EQ(tcgetattr(master, &t), 0);
    EXPECT_FALSE(t.c_lflag & ECHO);
    EXPECT_FALSE(t.c_lflag & ICANON);
    ASSERT_EQ(write(master, "\x1d", 1), 1);
    auto status = wait_pty_child(pid, master, 30s);
    ASSERT_TRUE(status) << "Ctrl-] did not detach";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    termios after{};
    ASSERT_EQ(tcgetattr(master, &after), 0);
    EXPECT_TRUE(after.c_lflag & ECHO);
    EXPECT_TRUE(after.c_lflag & ICANON);
    close(master);
    EXPECT_EQ(d.cli({"domstate", "tty"}).out, "running\n");
    EXPECT_CLI_OK(d.cli({"destroy", "tty"}));
}

TEST(Kvmkitd, SigkillOfDaemonLeavesVmsRunningAndRestartReadopts) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    for (const char* name : {"a", "b"}) {
        EXPECT_CLI_OK(d.cli({"define", d.write_definition(name, d.testguest_definition(name, kTicking))}));
        EXPECT_CLI_OK(d.cli({"start", name}));
    }
    EXPECT_CLI_OK(d.cli({"suspend", "b"}));
    auto pid_a = d.vm_pid("a"), pid_b = d.vm_pid("b");
    ASSERT_TRUE(pid_a && pid_b);

    d.kill_daemon(SIGKILL);
    EXPECT_TRUE(process_alive(*pid_a));
    EXPECT_TRUE(process_alive(*pid_b));
    expect_one_line_error(d.cli({"list"}), "is kvmkitd running?");

    START_DAEMON(d);
    auto list = d.cli({"list", "--json"});
    EXPECT_CLI_OK(list);
    EXPECT_NE(list.out.find("\"pid\": " + std::to_string(*pid_a)), std::string::npos) << list.out;
    EXPECT_NE(list.out.find("\"pid\": " + std::to_string(*pid_b)), std::string::npos) << list.out;
    EXPECT_EQ(d.cli({"domstate", "a", "--reason"}).out, "running (booted)\n");
    EXPECT_EQ(d.cli({"domstate", "b", "--reason"}).out, "paused (user)\n");
    auto table = d.cli({"list"});
    EXPECT_NE(table.out.find(std::to_string(*pid_a)), std::string::npos) << table.out;

    // Still controllable: resume b, watch its console, destroy a, power off b.
    EXPECT_CLI_OK(d.cli({"resume", "b"}));
    auto console = VmProcess::command({KVMKIT_BIN, "--connect", d.socket(), "console", "b"});
    ASSERT_TRUE(console.wait_for("KT: tick", 60s)) << console.output() << console.errors();
    long t = last_tick(console.output());
    ASSERT_TRUE(console.wait_for("KT: tick " + std::to_string(t + 1), 60s)) << console.output();
    console.send("\x1d");
    EXPECT_EQ(console.wait_exit(30s), 0);

    EXPECT_CLI_OK(d.cli({"destroy", "a"}));
    EXPECT_EQ(d.cli({"domstate", "a", "--reason"}).out, "shut off (destroyed)\n");
    EXPECT_FALSE(process_alive(*pid_a));
    EXPECT_CLI_OK(d.cli({"shutdown", "b", "--wait", "120"}));
    EXPECT_EQ(d.cli({"domstate", "b"}).out, "shut off\n");
    EXPECT_FALSE(process_alive(*pid_b));
}

// A re-adopted VMM is not kvmkitd's child, so its exit status is lost; the VMM's
// closing "exit status N" log line tells a clean stop from a kill.
TEST(Kvmkitd, ReadoptedVmThatIsKilledIsReportedCrashed) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    for (const char* name : {"k", "s"}) {
        EXPECT_CLI_OK(d.cli({"define", d.write_definition(name, d.testguest_definition(name, kTicking))}));
        EXPECT_CLI_OK(d.cli({"start", name}));
    }
    auto pid = d.vm_pid("k");
    ASSERT_TRUE(pid);
    d.kill_daemon(SIGKILL);
    START_DAEMON(d);
    EXPECT_EQ(d.cli({"domstate", "k"}).out, "running\n");

    kill(*pid, SIGKILL);
    std::string state;
    for (int i = 0; i < 500; ++i) {
        state = d.cli({"domstate", "k", "--reason"}).out;
        if (state.rfind("running", 0) != 0) break;
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(state, "crashed (ended without a clean exit (killed while re-adopted))\n");
    // ... while a re-adopted VM that powers off is shut off, not crashed.
    EXPECT_CLI_OK(d.cli({"shutdown", "s", "--wait", "120"}));
    EXPECT_EQ(d.cli({"domstate", "s", "--reason"}).out, "shut off (shutdown)\n");
}

// A VM that dies while no kvmkitd watches it is not "adopted": the restarted
// daemon reports it inactive, removes its stale files and can start it again.
TEST(Kvmkitd, VmThatDiedWhileTheDaemonWasDownIsNotAdopted) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    EXPECT_CLI_OK(d.cli({"define", d.write_definition("gone", d.testguest_definition("gone", kTicking))}));
    EXPECT_CLI_OK(d.cli({"start", "gone"}));
    auto pid = d.vm_pid("gone");
    ASSERT_TRUE(pid);
    d.kill_daemon(SIGKILL);
    kill(*pid, SIGKILL);
    for (int i = 0; i < 500 && process_alive(*pid); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_FALSE(process_alive(*pid));

    START_DAEMON(d);
    EXPECT_EQ(d.cli({"domstate", "gone"}).out, "shut off\n");
    EXPECT_FALSE(d.vm_pid("gone").has_value());
    EXPECT_NE(d.daemon_log().find("gone: not re-adopted"), std::string::npos) << d.daemon_log();
    EXPECT_CLI_OK(d.cli({"start", "gone"}));
    EXPECT_EQ(d.cli({"domstate", "gone"}).out, "running\n");
    EXPECT_CLI_OK(d.cli({"destroy", "gone"}));
}

TEST(Kvmkitd, AutostartStartsFlaggedVmsWhenTheDaemonStarts) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    for (const char* name : {"auto", "manual"})
        EXPECT_CLI_OK(d.cli({"define", d.write_definition(name, d.testguest_definition(name, kTicking))}));
    auto mark = d.cli({"autostart", "auto"});
    EXPECT_CLI_OK(mark);
    EXPECT_EQ(mark.out, "Domain 'auto' marked as autostarted\n");
    EXPECT_CLI_OK(d.cli({"autostart", "manual"}));
    EXPECT_CLI_OK(d.cli({"autostart", "manual", "--disable"}));
    d.kill_daemon(SIGTERM);

    START_DAEMON(d);
    EXPECT_TRUE(wait_state(d, "auto", "running", 120s)) << d.daemon_log();
    EXPECT_EQ(d.cli({"domstate", "manual"}).out, "shut off\n");
    EXPECT_NE(d.cli({"dominfo", "auto"}).out.find("Autostart:      enable"), std::string::npos);
    auto names = d.cli({"list", "--name"});
    EXPECT_EQ(names.out, "auto\n");
    // A restart while it runs re-adopts it rather than starting a second copy.
    auto pid = d.vm_pid("auto");
    d.kill_daemon(SIGTERM);
    START_DAEMON(d);
    EXPECT_EQ(d.vm_pid("auto"), pid);
    EXPECT_EQ(d.cli({"domstate", "auto"}).out, "running\n");
}

TEST(Kvmkitd, UndefineOfARunningVmIsRefusedUnlessForced) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    EXPECT_CLI_OK(d.cli({"define", d.write_definition("u", d.testguest_definition("u", kTicking))}));
    EXPECT_CLI_OK(d.cli({"start", "u"}));
    auto pid = d.vm_pid("u");
    ASSERT_TRUE(pid);
    expect_one_line_error(d.cli({"undefine", "u"}), "domain 'u' is running; destroy it first or use --force");
    EXPECT_EQ(d.cli({"domstate", "u"}).out, "running\n");
    auto forced = d.cli({"undefine", "u", "--force"});
    EXPECT_CLI_OK(forced);
    EXPECT_EQ(forced.out, "Domain 'u' has been undefined\n");
    EXPECT_FALSE(process_alive(*pid));
    expect_one_line_error(d.cli({"domstate", "u"}), "domain 'u' is not defined");
    struct stat st {};
    EXPECT_NE(stat((d.state_dir() + "/vms/u.json").c_str(), &st), 0);
    // An inactive VM is undefined without --force.
    EXPECT_CLI_OK(d.cli({"define", d.write_definition("u", d.testguest_definition("u", kTicking))}));
    EXPECT_CLI_OK(d.cli({"undefine", "u"}));
}

TEST(Kvmkitd, ConcurrentStartsOfOneVmExactlyOneWins) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    EXPECT_CLI_OK(d.cli({"define", d.write_definition("c", d.testguest_definition("c", kTicking))}));
    constexpr int kClients = 4;
    std::vector<std::future<CliResult>> starts;
    for (int i = 0; i < kClients; ++i)
        starts.push_back(std::async(std::launch::async, [&d] { return d.cli({"start", "c"}); }));
    int won = 0;
    for (auto& f : starts) {
        CliResult r = f.get();
        if (r.code == 0) {
            ++won;
            EXPECT_EQ(r.out, "Domain 'c' started\n");
        } else {
            bool clear = r.err.find("domain 'c' is already running") != std::string::npos ||
                         r.err.find("domain 'c' is already being started") != std::string::npos;
            EXPECT_TRUE(clear) << r.err;
            expect_one_line_error(r, "domain 'c' is already");
        }
    }
    EXPECT_EQ(won, 1);
    // One process, the one in the pid file.
    auto pid = d.vm_pid("c");
    ASSERT_TRUE(pid);
    auto ps = run_kvmkit({"--connect", d.socket(), "list", "--json"});
    EXPECT_NE(ps.out.find("\"pid\": " + std::to_string(*pid)), std::string::npos);
    EXPECT_CLI_OK(d.cli({"destroy", "c"}));
}

TEST(Kvmkitd, ReadOnlySocketAnswersQueriesAndRefusesChanges) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    EXPECT_CLI_OK(d.cli({"define", d.write_definition("ro", d.testguest_definition("ro", kTicking))}));
    struct stat st {};
    ASSERT_EQ(stat(d.socket().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(stat(d.ro_socket().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u);

    auto list = run_kvmkit({"--connect", d.ro_socket(), "list", "--all", "--name"});
    EXPECT_CLI_OK(list);
    EXPECT_EQ(list.out, "ro\n");
    for (std::vector<std::string> change :
         {std::vector<std::string>{"start", "ro"}, {"undefine", "ro"}, {"autostart", "ro"}, {"destroy", "ro"}}) {
        change.insert(change.begin(), {"--connect", d.ro_socket()});
        auto r = run_kvmkit(change);
        expect_one_line_error(r, "read-only connection");
    }
    EXPECT_EQ(d.cli({"domstate", "ro"}).out, "shut off\n");
}

TEST(Kvmkitd, UserWithoutAccessGetsPermissionDeniedAtOnce) {
    REQUIRE_KVM();
    if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "setpriv (util-linux) is not installed";
    KvmkitdFixture d;
    START_DAEMON(d);
    EXPECT_CLI_OK(d.cli({"define", d.write_definition("p", d.testguest_definition("p", kTicking))}));
    // nobody (group nogroup, the daemon's --ro-group here) cannot open the 0600 socket.
    auto r = run_kvmkit({"--connect", d.socket(), "start", "p"}, std::chrono::seconds(20), "", {}, true);
    ASSERT_NE(r.code, -1) << "the client hung";
    expect_one_line_error(r, "permission denied");
    // Through the read-only socket (the group may use it) queries work, changes do not.
    auto q = run_kvmkit({"--connect", d.ro_socket(), "domstate", "p"}, std::chrono::seconds(20), "", {}, true);
    EXPECT_CLI_OK(q);
    EXPECT_EQ(q.out, "shut off\n");
    auto c = run_kvmkit({"--connect", d.ro_socket(), "start", "p"}, std::chrono::seconds(20), "", {}, true);
    expect_one_line_error(c, "read-only connection");
    EXPECT_EQ(d.cli({"domstate", "p"}).out, "shut off\n");
}

TEST(Kvmkitd, FailedStartAndCrashAreReportedWithAReason) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    EXPECT_CLI_OK(
        d.cli({"define", d.write_definition("bad", "{\"name\": \"bad\", \"kernel\": \"/nonexistent/vmlinux\"}")}));
    auto r = d.cli({"start", "bad"});
    expect_one_line_error(r, "/nonexistent/vmlinux");
    EXPECT_EQ(d.cli({"domstate", "bad", "--reason"}).out, "shut off (failed)\n");

    EXPECT_CLI_OK(d.cli({"define", d.write_definition("k", d.testguest_definition("k", kTicking))}));
    EXPECT_CLI_OK(d.cli({"start", "k"}));
    auto pid = d.vm_pid("k");
    ASSERT_TRUE(pid);
    kill(*pid, SIGKILL);
    EXPECT_TRUE(wait_state(d, "k", "crashed", 30s));
    EXPECT_EQ(d.cli({"domstate", "k", "--reason"}).out, "crashed (killed by signal 9 (SIGKILL))\n");
    // A crashed VM can be started again.
    EXPECT_CLI_OK(d.cli({"start", "k"}));
    EXPECT_CLI_OK(d.cli({"destroy", "k"}));
}

TEST(Kvmkitd, EditValidatesBeforeSaving) {
    REQUIRE_KVM();
    KvmkitdFixture d;
    START_DAEMON(d);
    EXPECT_CLI_OK(d.cli({"define", d.write_definition("e", d.testguest_definition("e", kTicking))}));
    TempDir tmp;
    // An "editor" that introduces a typo: refused, and after "n" nothing is saved.
    std::string typo = tmp.path() + "/typo.sh";
    std::ofstream(typo) << "#!/bin/sh\nsed -i 's/\"memory\"/\"memroy\"/' \"$1\"\n";
    chmod(typo.c_str(), 0755);
    auto bad = run_kvmkit({"--connect", d.socket(), "edit", "e"}, std::chrono::seconds(60), "n\n",
                          {"EDITOR=" + typo, "VISUAL="});
    EXPECT_NE(bad.code, 0);
    EXPECT_NE(bad.err.find("\"memroy\": unknown key"), std::string::npos) << bad.err;
    EXPECT_NE(bad.err.find("Try again?"), std::string::npos) << bad.err;
    EXPECT_NE(d.cli({"dumpconfig", "e"}).out.find("\"memory\": \"64M\""), std::string::npos);
    // A good edit is saved.
    std::string good = tmp.path() + "/good.sh";
    std::ofstream(good) << "#!/bin/sh\nsed -i 's/\"64M\"/\"96M\"/' \"$1\"\n";
    chmod(good.c_str(), 0755);
    auto ok =
        run_kvmkit({"--connect", d.socket(), "edit", "e"}, std::chrono::seconds(60), "", {"EDITOR=" + good, "VISUAL="});
    EXPECT_CLI_OK(ok);
    EXPECT_NE(ok.out.find("Domain 'e' configuration edited."), std::string::npos);
    EXPECT_NE(d.cli({"dumpconfig", "e"}).out.find("\"memory\": \"96M\""), std::string::npos);
}

// The whole round trip with the default Linux guest: define -> start -> the
// console shows the shell prompt -> shutdown by the power button -> shut off.
TEST(KvmkitdLinux, DefineStartConsolePromptShutdown) {
    REQUIRE_LINUX_GUEST();
    KvmkitdFixture d;
    START_DAEMON(d);
    // No kernel: the default guest (from $KVMKIT_CACHE, which kvmkitd passes on).
    EXPECT_CLI_OK(d.cli({"define", d.write_definition("linux", "{\"name\": \"linux\", \"memory\": \"256M\"}")}));
    EXPECT_CLI_OK(d.cli({"start", "linux"}));
    auto console = VmProcess::command({KVMKIT_BIN, "--connect", d.socket(), "console", "linux"});
    auto ready = console.wait_for_from("KVMKIT-GUEST-READY", 0, 900s);
    ASSERT_TRUE(ready) << console.output() << console.errors();
    ASSERT_TRUE(console.wait_for_from("# ", *ready, 300s)) << console.output();  // the shell's prompt
    console.send("echo kvmkit-$((6*7))\n");
    ASSERT_TRUE(console.wait_for("kvmkit-42", 300s)) << console.output();
    console.send("\x1d");
    EXPECT_EQ(console.wait_exit(30s), 0);
    auto shut = d.cli({"shutdown", "linux", "--wait", "600"}, std::chrono::seconds(700));
    EXPECT_CLI_OK(shut);
    EXPECT_EQ(d.cli({"domstate", "linux", "--reason"}).out, "shut off (shutdown)\n");
}

}  // namespace
}  // namespace kvmkit::test
