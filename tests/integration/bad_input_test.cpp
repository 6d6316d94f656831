// Bad input gets a one-line error and a non-zero exit code: never a crash,
// never a hang.
#include <asm/bootparam.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "guest_assets.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

struct Outcome {
    int code;
    std::string err;
};

Outcome run_expecting_failure(std::vector<std::string> args) {
    VmProcess vm(std::move(args));
    vm.close_stdin();
    auto code = vm.wait_exit(60s);
    EXPECT_TRUE(code.has_value()) << "kvmkit hung on bad input";
    return {code.value_or(-1), vm.errors()};
}

void expect_one_line_error(const Outcome& o, const std::string& needle) {
    EXPECT_NE(o.code, 0);
    EXPECT_LT(o.code, 128) << "killed by a signal: " << o.err;  // a crash would show as 128+signal
    EXPECT_NE(o.err.find("kvmkit: error: "), std::string::npos) << o.err;
    EXPECT_NE(o.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << o.err;
    EXPECT_EQ(count_of(o.err, "\n"), 1u) << "not one line: " << o.err;
}

TEST(BadInput, MissingKernel) {
    auto o = run_expecting_failure({"--kernel", "/nonexistent/bzImage"});
    expect_one_line_error(o, "/nonexistent/bzImage");
    EXPECT_NE(o.err.find("No such file"), std::string::npos) << o.err;
}

TEST(BadInput, UnreadableKernel) {
    REQUIRE_KVM();
    TempDir tmp;
    auto o = run_expecting_failure({"--kernel", tmp.path()});  // a directory
    expect_one_line_error(o, "is a directory");
}

TEST(BadInput, NotAKernel) {
    REQUIRE_KVM();
    TempDir tmp;
    auto path = tmp.write("junk", pseudo_random_bytes(64 * 1024, 7));
    expect_one_line_error(run_expecting_failure({"--kernel", path}), "not a bzImage");
}

TEST(BadInput, ElfWithoutPvhNote) {
    REQUIRE_KVM();
    // Any ordinary x86-64 executable is an ELF without the PVH note.
    expect_one_line_error(run_expecting_failure({"--kernel", "/bin/true"}), "no PVH entry note");
}

TEST(BadInput, KernelTooOldForTheBootProtocol) {
    REQUIRE_KVM();
    std::vector<uint8_t> img(8192, 0);
    setup_header hdr{};
    hdr.setup_sects = 4;
    hdr.boot_flag = 0xaa55;
    hdr.header = 0x53726448;  // "HdrS"
    hdr.version = 0x0204;     // 2.04: no 64-bit entry
    hdr.loadflags = LOADED_HIGH;
    std::memcpy(img.data() + 0x1f1, &hdr, sizeof hdr);
    TempDir tmp;
    auto path = tmp.write("old-bzImage", img);
    expect_one_line_error(run_expecting_failure({"--kernel", path}), "kernel too old");
}

TEST(BadInput, InitrdDoesNotFit) {
    REQUIRE_KVM();
    TempDir tmp;
    auto initrd = tmp.write("big-initrd", std::vector<uint8_t>(24u << 20, 0x5a));
    expect_one_line_error(
        run_expecting_failure({"--kernel", testguest_bzimage(), "--initrd", initrd, "--memory", "16M"}),
        "initrd");
}

TEST(BadInput, MissingInitrd) {
    REQUIRE_KVM();
    expect_one_line_error(run_expecting_failure({"--kernel", testguest_bzimage(), "--initrd", "/nonexistent/initrd"}),
                          "/nonexistent/initrd");
}

TEST(BadInput, MemoryTooSmall) {
    REQUIRE_KVM();
    expect_one_line_error(run_expecting_failure({"--kernel", testguest_bzimage(), "--memory", "1M"}), "too small");
}

TEST(BadInput, MemoryLargerThanTheHost) {
    REQUIRE_KVM();
    expect_one_line_error(run_expecting_failure({"--kernel", testguest_bzimage(), "--memory", "64T"}),
                          "more than the host has");
}

TEST(BadInput, MalformedMemorySize) {
    expect_one_line_error(run_expecting_failure({"--kernel", testguest_bzimage(), "--memory", "12Q"}), "--memory");
}

TEST(BadInput, ZeroCpus) {
    REQUIRE_KVM();
    expect_one_line_error(run_expecting_failure({"--kernel", testguest_bzimage(), "--cpus", "0"}), "--cpus");
}

TEST(BadInput, TooManyCpus) {
    REQUIRE_KVM();
    expect_one_line_error(run_expecting_failure({"--kernel", testguest_bzimage(), "--cpus", "100000"}),
                          "above the limit");
}

TEST(BadInput, UnknownFlag) {
    auto o = run_expecting_failure({"--kernel", testguest_bzimage(), "--frobnicate"});
    expect_one_line_error(o, "--frobnicate");
    EXPECT_EQ(o.code, 2);
}

TEST(BadInput, UnknownCpuProfile) {
    expect_one_line_error(run_expecting_failure({"--kernel", testguest_bzimage(), "--cpu", "pentium"}), "pentium");
}

TEST(BadInput, CommandLineTooLong) {
    REQUIRE_KVM();
    expect_one_line_error(
        run_expecting_failure({"--kernel", testguest_elf(), "--cmdline", std::string(5000, 'x')}),
        "command line too long");
}

TEST(BadInput, NoDevKvmPointsAtCheck) {
    // Hide /dev/kvm in a private mount namespace; needs root and unshare(1).
    if (geteuid() != 0 || access("/usr/bin/unshare", X_OK) != 0) GTEST_SKIP() << "needs root and unshare";
    std::string cmd = std::string("unshare --mount sh -c 'mount -t tmpfs none /dev && exec ") + KVMKIT_BIN +
                      " run --kernel " + testguest_bzimage() + "' 2>&1 </dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    int status = pclose(p);
    if (out.find("mount") != std::string::npos && out.find("kvmkit") == std::string::npos)
        GTEST_SKIP() << "cannot make a mount namespace here: " << out;
    EXPECT_NE(WEXITSTATUS(status), 0);
    EXPECT_NE(out.find("/dev/kvm"), std::string::npos) << out;
    EXPECT_NE(out.find("kvmkit check"), std::string::npos) << out;
}

}  // namespace
}  // namespace kvmkit::test
