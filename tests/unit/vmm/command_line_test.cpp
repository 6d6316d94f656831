// parse_command_line: the kvmkit-vmm / `kvmkit run` flags, and the default guest
// taken from $KVMKIT_CACHE/guest when no --kernel is given.
#include "vmm/command_line.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

using namespace kvmkit::vmm;
using kvmkit::arch::x86_64::CpuProfile;

namespace {

constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

// Points KVMKIT_CACHE at a fresh temporary directory for the test's duration.
class TempCache {
public:
    TempCache() {
        char tmpl[] = "/tmp/kvmkit-cl-test-XXXXXX";
        const char* d = ::mkdtemp(tmpl);
        EXPECT_NE(d, nullptr);
        dir_ = d ? d : "/nonexistent";
        const char* old = std::getenv("KVMKIT_CACHE");
        had_old_ = old != nullptr;
        if (old) old_ = old;
        ::setenv("KVMKIT_CACHE", dir_.c_str(), 1);
    }
    ~TempCache() {
        if (had_old_)
            ::setenv("KVMKIT_CACHE", old_.c_str(), 1);
        else
            ::unsetenv("KVMKIT_CACHE");
        for (const char* f : {"/guest/vmlinux", "/guest/initramfs.cpio", "/guest/cmdline"})
            std::remove((dir_ + f).c_str());
        ::rmdir((dir_ + "/guest").c_str());
        ::rmdir(dir_.c_str());
    }
    const std::string& dir() const { return dir_; }
    void add_guest_file(const std::string& name, const std::string& content) {
        ::mkdir((dir_ + "/guest").c_str(), 0755);
        std::ofstream(dir_ + "/guest/" + name) << content;
    }

private:
    std::string dir_, old_;
    bool had_old_ = false;
};

ParsedCommandLine parse_ok(std::vector<std::string> args) {
    auto r = parse_command_line(args);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : ParsedCommandLine{};
}

std::string parse_error(std::vector<std::string> args) {
    auto r = parse_command_line(args);
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().message();
}

}  // namespace

TEST(CommandLine, Defaults) {
    auto p = parse_ok({"--kernel", "/boot/vmlinuz"});
    EXPECT_FALSE(p.help);
    EXPECT_EQ(p.config.kernel, "/boot/vmlinuz");
    EXPECT_EQ(p.config.memory, 512 * MiB);
    EXPECT_EQ(p.config.cpus, 1u);
    EXPECT_FALSE(p.config.cpu_profile.has_value()) << "auto: chosen from the host";
    EXPECT_FALSE(p.config.no_reboot);
    EXPECT_EQ(p.config.initrd, "");
    EXPECT_EQ(p.log_level, "warn");
}

TEST(CommandLine, Memory) {
    EXPECT_EQ(parse_ok({"--kernel", "k", "--memory", "512M"}).config.memory, 512 * MiB);
    EXPECT_EQ(parse_ok({"--kernel", "k", "--memory", "4G"}).config.memory, 4 * GiB);
    EXPECT_EQ(parse_ok({"--kernel", "k", "-m", "1G"}).config.memory, 1 * GiB);
    EXPECT_EQ(parse_ok({"--kernel", "k", "--memory=768M"}).config.memory, 768 * MiB);
    auto e = parse_error({"--kernel", "k", "--memory", "lots"});
    EXPECT_NE(e.find("--memory"), std::string::npos) << e;
    EXPECT_FALSE(parse_command_line({"--kernel", "k", "--memory", "12X"}));
}

TEST(CommandLine, Cpus) {
    EXPECT_EQ(parse_ok({"--kernel", "k", "--cpus", "4"}).config.cpus, 4u);
    EXPECT_EQ(parse_ok({"--kernel", "k", "-c", "2"}).config.cpus, 2u);
    EXPECT_FALSE(parse_command_line({"--kernel", "k", "--cpus", "two"}));
    EXPECT_FALSE(parse_command_line({"--kernel", "k", "--cpus"}));
}

TEST(CommandLine, CpuProfile) {
    EXPECT_EQ(parse_ok({"--kernel", "k", "--cpu", "host"}).config.cpu_profile, CpuProfile::Host);
    EXPECT_EQ(parse_ok({"--kernel", "k", "--cpu", "emulated"}).config.cpu_profile, CpuProfile::Emulated);
    EXPECT_EQ(parse_ok({"--kernel", "k", "--cpu", "minimal"}).config.cpu_profile, CpuProfile::Minimal);
    EXPECT_FALSE(parse_ok({"--kernel", "k", "--cpu", "auto"}).config.cpu_profile.has_value());
    auto e = parse_error({"--kernel", "k", "--cpu", "turbo"});
    EXPECT_NE(e.find("--cpu"), std::string::npos) << e;
    EXPECT_NE(e.find("turbo"), std::string::npos) << e;
}

TEST(CommandLine, OtherOptions) {
    auto p = parse_ok({"--kernel", "k", "--initrd", "i.cpio", "--cmdline", "console=ttyS0 quiet", "--name", "vm1",
                       "--no-reboot", "--log-level", "debug"});
    EXPECT_EQ(p.config.initrd, "i.cpio");
    EXPECT_EQ(p.config.cmdline, "console=ttyS0 quiet");
    EXPECT_EQ(p.config.name, "vm1");
    EXPECT_TRUE(p.config.no_reboot);
    EXPECT_EQ(p.log_level, "debug");
    // Order does not matter.
    auto q = parse_ok({"--no-reboot", "--cpus", "3", "--kernel", "k2"});
    EXPECT_TRUE(q.config.no_reboot);
    EXPECT_EQ(q.config.cpus, 3u);
    EXPECT_EQ(q.config.kernel, "k2");
}

TEST(CommandLine, BadLogLevel) {
    auto e = parse_error({"--kernel", "k", "--log-level", "loud"});
    EXPECT_NE(e.find("loud"), std::string::npos) << e;
}

TEST(CommandLine, UnknownFlagIsAnError) {
    auto e = parse_error({"--kernel", "k", "--frobnicate"});
    EXPECT_NE(e.find("frobnicate"), std::string::npos) << e;
    EXPECT_FALSE(parse_command_line({"--kernel", "k", "stray-positional"}));
}

TEST(CommandLine, Help) {
    for (const char* flag : {"--help", "-h"}) {
        auto p = parse_ok({flag});
        EXPECT_TRUE(p.help);
        EXPECT_NE(p.text.find("--memory"), std::string::npos) << p.text;
        EXPECT_NE(p.text.find("--kernel"), std::string::npos) << p.text;
        EXPECT_NE(p.text.find("--cpu"), std::string::npos) << p.text;
    }
    // --help wins even without a kernel and with other flags.
    EXPECT_TRUE(parse_ok({"--memory", "1G", "--help"}).help);
}

TEST(CommandLine, NoKernelIsLeftForTheDefaultGuest) {
    // Parsing does not look at the file system: without --kernel the caller applies the default guest.
    TempCache cache;  // empty
    auto p = parse_ok({"--memory", "1G"});
    EXPECT_EQ(p.config.kernel, "");
    EXPECT_FALSE(p.cmdline_given);
    EXPECT_TRUE(parse_ok({"--cmdline", ""}).cmdline_given) << "an empty --cmdline is still given";
    EXPECT_TRUE(parse_ok({"--cmdline", "quiet"}).cmdline_given);
}

TEST(DefaultGuest, MissingGuestPointsAtTheBuildScript) {
    TempCache cache;  // empty: no guest/vmlinux
    VmConfig cfg;
    auto r = apply_default_guest(cfg, false);
    ASSERT_FALSE(r);
    const auto& e = r.error().message();
    EXPECT_NE(e.find("scripts/build-guest.sh"), std::string::npos) << e;
    EXPECT_NE(e.find(cache.dir()), std::string::npos) << "names the path it looked at: " << e;
    EXPECT_EQ(cfg.kernel, "");
}

TEST(DefaultGuest, TakenFromTheCache) {
    TempCache cache;
    cache.add_guest_file("vmlinux", "ELF");
    cache.add_guest_file("initramfs.cpio", "070701");
    cache.add_guest_file("cmdline", "console=ttyS0 quiet  \n");
    EXPECT_EQ(default_guest_dir(), cache.dir() + "/guest");

    VmConfig cfg;
    ASSERT_TRUE(apply_default_guest(cfg, false));
    EXPECT_EQ(cfg.kernel, cache.dir() + "/guest/vmlinux");
    EXPECT_EQ(cfg.initrd, cache.dir() + "/guest/initramfs.cpio");
    EXPECT_EQ(cfg.cmdline, "console=ttyS0 quiet") << "trailing blanks and newline trimmed";

    // An explicit command line and initrd win over the defaults.
    auto p = parse_ok({"--cmdline", "init=/bin/sh", "--initrd", "/my.cpio"});
    ASSERT_TRUE(apply_default_guest(p.config, p.cmdline_given));
    EXPECT_EQ(p.config.cmdline, "init=/bin/sh");
    EXPECT_EQ(p.config.initrd, "/my.cpio");
    EXPECT_EQ(p.config.kernel, cache.dir() + "/guest/vmlinux");
    // An explicitly empty command line is kept empty.
    auto q = parse_ok({"--cmdline", ""});
    ASSERT_TRUE(apply_default_guest(q.config, q.cmdline_given));
    EXPECT_EQ(q.config.cmdline, "");
}

TEST(DefaultGuest, WithoutCmdlineFile) {
    TempCache cache;
    cache.add_guest_file("vmlinux", "ELF");
    VmConfig cfg;
    ASSERT_TRUE(apply_default_guest(cfg, false));
    EXPECT_EQ(cfg.initrd, "") << "no initramfs.cpio in the cache";
    EXPECT_NE(cfg.cmdline.find("console=ttyS0"), std::string::npos) << cfg.cmdline;
}

TEST(DefaultGuest, CacheDirectoryDefault) {
    TempCache cache;
    ::unsetenv("KVMKIT_CACHE");
    EXPECT_EQ(default_guest_dir(), "/var/cache/kvmkit/guest");
    ::setenv("KVMKIT_CACHE", "", 1);
    EXPECT_EQ(default_guest_dir(), "/var/cache/kvmkit/guest") << "an empty variable counts as unset";
}

TEST(CommandLine, ConfigFileGivesTheVm) {
    TempCache cache;
    std::string file = cache.dir() + "/vm.json";
    std::ofstream(file) << R"({"name": "fromfile", "memory": "256M", "cmdline": "", "disks": [{"path": "/d.raw"}]})";
    auto p = parse_ok({"--config", file, "--log-level", "info"});
    EXPECT_EQ(p.config.name, "fromfile");
    EXPECT_EQ(p.config.memory, 256 * MiB);
    ASSERT_EQ(p.config.disks.size(), 1u);
    EXPECT_TRUE(p.cmdline_given) << "an empty cmdline in the file is still given";
    EXPECT_EQ(p.log_level, "info");
    std::remove(file.c_str());
}

TEST(CommandLine, ConfigFileErrors) {
    TempCache cache;
    std::string file = cache.dir() + "/vm.json";
    std::ofstream(file) << R"({"name": "x", "memroy": "1G"})";
    EXPECT_NE(parse_error({"--config", file}).find("\"memroy\": unknown key"), std::string::npos);
    EXPECT_NE(parse_error({"--config", file, "--cpus", "2"}).find("cannot be combined"), std::string::npos);
    EXPECT_NE(parse_error({"--config", cache.dir() + "/missing.json"}).find("missing.json"), std::string::npos);
    std::remove(file.c_str());
}

namespace {

TEST(CommandLine, NetIsRepeatable) {
    auto p = parse_ok({"--kernel", "/k", "--net", "tap,ifname=kt0,vhost=on", "--net", "user,hostfwd=tcp::8080-:80",
                       "--net", "tap"});
    ASSERT_EQ(p.config.nets.size(), 3u);
    EXPECT_EQ(p.config.nets[0].backend, kvmkit::net::NetBackendKind::Tap);
    EXPECT_EQ(p.config.nets[0].ifname, "kt0");
    EXPECT_TRUE(p.config.nets[0].vhost);
    EXPECT_EQ(p.config.nets[1].backend, kvmkit::net::NetBackendKind::User);
    ASSERT_EQ(p.config.nets[1].hostfwd.size(), 1u);
    EXPECT_EQ(p.config.nets[1].hostfwd[0].host_port, 8080);
    EXPECT_TRUE(p.config.nets[2].ifname.empty());
    EXPECT_TRUE(parse_ok({"--kernel", "/k"}).config.nets.empty());
}

TEST(CommandLine, BadNetNamesTheOption) {
    auto e = parse_error({"--kernel", "/k", "--net", "tap,vhost=maybe"});
    EXPECT_NE(e.find("--net tap,vhost=maybe: vhost: use on or off"), std::string::npos) << e;
    e = parse_error({"--kernel", "/k", "--net", "user,hostfwd=tcp:0.0.0.0:80-:80"});
    EXPECT_NE(e.find("not loopback"), std::string::npos) << e;
}

}  // namespace
