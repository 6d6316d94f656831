// Where the integration tests find their guests, and small helpers to make
// files for them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvmkit::test {

std::string testguest_bzimage();
std::string testguest_elf();
// The default Linux guest built by scripts/build-guest.sh, or "" with `why` set.
std::string linux_guest_dir(std::string& why);

// Skips a test when the default Linux guest is not built; in CI (CI set) that is a failure.
// Needs vm_process.hpp (REQUIRE_KVM) and <cstdlib>.
#define REQUIRE_LINUX_GUEST()                                      \
    REQUIRE_KVM();                                                 \
    std::string why_guest_;                                        \
    if (::kvmkit::test::linux_guest_dir(why_guest_).empty()) {     \
        if (getenv("CI")) FAIL() << why_guest_;                    \
        GTEST_SKIP() << why_guest_;                                \
    }

// A temporary directory removed at destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }
    std::string write(const std::string& name, const std::vector<uint8_t>& bytes) const;

private:
    std::string path_;
};

std::vector<uint8_t> pseudo_random_bytes(size_t n, uint32_t seed);
uint32_t crc32(const std::vector<uint8_t>& bytes);

}  // namespace kvmkit::test
