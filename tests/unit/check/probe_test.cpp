// The system probe: parsers, fabricated /sys trees, and one run on the real
// host (which must not crash and must produce entries, whatever the host is).
#include "check/probe.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "check/checks.hpp"
#include "check/report.hpp"
#include "fake_hosts.hpp"

using namespace kvmkit::check;
using namespace kvmkit::check::testing;

namespace {

class TempDir {
public:
    TempDir() {
        std::string tmpl = ::testing::TempDir() + "kvmkit_check_XXXXXX";
        path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
    }
    ~TempDir() {
        if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
    }
    const std::string& path() const { return path_; }
    void mkdir(const std::string& rel) const { ::mkdir((path_ + "/" + rel).c_str(), 0755); }
    void write(const std::string& rel, const std::string& text) const { std::ofstream(path_ + "/" + rel) << text; }

private:
    std::string path_;
};

constexpr const char* kCpuinfo =
    "processor\t: 0\n"
    "vendor_id\t: GenuineIntel\n"
    "model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\n"
    "flags\t\t: fpu vme de pse vmx lm  x2apic\n"
    "\n"
    "processor\t: 1\n"
    "vendor_id\t: Other\n"
    "flags\t\t: fpu svm\n"
    "\n";

}  // namespace

TEST(ParseCpuinfo, FirstProcessor) {
    CpuInfo info = parse_cpuinfo(kCpuinfo);
    EXPECT_EQ(info.vendor, "GenuineIntel");
    EXPECT_EQ(info.model, "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz");
    EXPECT_EQ(info.flags, (std::set<std::string>{"fpu", "vme", "de", "pse", "vmx", "lm", "x2apic"}));
    EXPECT_EQ(info.flags.count("svm"), 0u);
}

TEST(ParseCpuinfo, EmptyAndOddInput) {
    EXPECT_TRUE(parse_cpuinfo("").flags.empty());
    EXPECT_TRUE(parse_cpuinfo("garbage\nno colon here\n").flags.empty());
    EXPECT_EQ(parse_cpuinfo("flags : svm\r\n").flags, (std::set<std::string>{"svm"}));
}

TEST(ProbeModule, LoadedBuiltInAbsent) {
    TempDir t;
    ASSERT_FALSE(t.path().empty());
    t.mkdir("kvm");
    t.mkdir("kvm/parameters");
    t.mkdir("kvm_intel");
    t.write("kvm_intel/initstate", "live\n");
    EXPECT_EQ(probe_module(t.path(), "kvm", ""), ModuleState::BuiltIn);
    EXPECT_EQ(probe_module(t.path(), "kvm_intel", ""), ModuleState::Loaded);
    EXPECT_EQ(probe_module(t.path(), "kvm_amd", ""), ModuleState::Absent);
    EXPECT_EQ(probe_module(t.path(), "kvm_amd", "kernel/fs/ext4/ext4.ko\nkernel/arch/x86/kvm/kvm-amd.ko\n"),
              ModuleState::BuiltIn);
    EXPECT_EQ(probe_module(t.path(), "kvm_pvm", "kernel/arch/x86/kvm/kvm-amd.ko\n"), ModuleState::Absent);
}

TEST(ProbeDevice, CharDeviceRegularFileAndMissing) {
    DeviceFacts null = probe_device("/dev/null");
    EXPECT_TRUE(null.exists);
    EXPECT_TRUE(null.is_char_device);
    EXPECT_TRUE(null.opened());
    EXPECT_EQ(null.major, 1u);
    EXPECT_EQ(null.minor, 3u);

    DeviceFacts untried = probe_device("/dev/null", /*try_open=*/false);
    EXPECT_FALSE(untried.open_errno.has_value());

    TempDir t;
    t.write("file", "x");
    DeviceFacts file = probe_device(t.path() + "/file");
    EXPECT_TRUE(file.exists);
    EXPECT_FALSE(file.is_char_device);
    EXPECT_FALSE(file.open_errno.has_value());

    DeviceFacts missing = probe_device(t.path() + "/none");
    EXPECT_FALSE(missing.exists);
    EXPECT_EQ(missing.path, t.path() + "/none");
}

TEST(ProbeHost, FabricatedPaths) {
    TempDir t;
    t.write("cpuinfo", kCpuinfo);
    t.mkdir("module");
    t.mkdir("module/kvm");
    t.write("module/kvm/initstate", "live\n");
    t.write("builtin", "kernel/arch/x86/kvm/kvm-intel.ko\n");
    ProbePaths paths;
    paths.cpuinfo = t.path() + "/cpuinfo";
    paths.sys_module = t.path() + "/module";
    paths.modules_builtin = t.path() + "/builtin";
    paths.kvm = t.path() + "/kvm";
    paths.tun = t.path() + "/tun";
    paths.vhost_net = t.path() + "/vhost-net";
    HostFacts f = probe_host(paths);
    ASSERT_TRUE(f.cpu_flags);
    EXPECT_TRUE(f.has_cpu_flag("vmx"));
    EXPECT_EQ(f.cpu_vendor, "GenuineIntel");
    EXPECT_EQ(f.module("kvm"), ModuleState::Loaded);
    EXPECT_EQ(f.module("kvm_intel"), ModuleState::BuiltIn);
    EXPECT_FALSE(f.has_module("kvm_pvm"));
    EXPECT_FALSE(f.kvm.exists);
    EXPECT_FALSE(f.api_version.attempted);
    EXPECT_FALSE(f.create_vm.attempted);
    EXPECT_TRUE(f.capabilities.empty());
    EXPECT_FALSE(f.kernel_release.empty());
    EXPECT_EQ(f.user.uid, ::geteuid());

    auto results = evaluate_host(f);
    const CheckResult* dev = find_check(results, paths.kvm + " exists");
    ASSERT_NE(dev, nullptr);
    EXPECT_EQ(dev->status, Status::Fail);
    EXPECT_EQ(exit_code(results), 1);
}

TEST(ProbeHost, MissingCpuinfoIsRecorded) {
    ProbePaths paths;
    paths.cpuinfo = "/nonexistent/kvmkit/cpuinfo";
    paths.kvm = "/nonexistent/kvmkit/kvm";
    EXPECT_FALSE(probe_host(paths).cpu_flags.has_value());
}

// Runs the real probe: must not crash and must report every check whose
// facts it could gather. The verdicts depend on the host and are not checked.
TEST(ProbeHost, RealHost) {
    HostFacts f = probe_host();
    auto results = evaluate_host(f);
    ASSERT_GE(results.size(), 7u);
    EXPECT_EQ(results.front().name, "CPU virtualization");
    EXPECT_EQ(results.back().name, "/dev/vhost-net");
    if (f.kvm.opened()) {
        EXPECT_TRUE(f.api_version.attempted);
        EXPECT_TRUE(f.create_vm.attempted);
        EXPECT_EQ(f.capabilities.size(), capability_specs().size());
        EXPECT_NE(find_check(results, "KVM_CAP_IRQCHIP"), nullptr);
    }
    std::ostringstream text;
    write_text(results, text);
    EXPECT_FALSE(text.str().empty());
    std::cout << text.str();
}
