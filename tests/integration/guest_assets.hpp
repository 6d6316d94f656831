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
