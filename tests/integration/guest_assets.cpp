#include "guest_assets.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "kvmkit_testguest_paths.h"

namespace kvmkit::test {

std::string testguest_bzimage() { return KVMKIT_TESTGUEST_BZIMAGE; }
std::string testguest_elf() { return KVMKIT_TESTGUEST_ELF; }

std::string linux_guest_dir(std::string& why) {
    const char* cache = getenv("KVMKIT_CACHE");
    std::string dir = std::string(cache && *cache ? cache : "/var/cache/kvmkit") + "/guest";
    if (access((dir + "/vmlinux").c_str(), R_OK) != 0 || access((dir + "/initramfs.cpio").c_str(), R_OK) != 0) {
        why = "the default Linux guest is not built in " + dir + " (run scripts/build-guest.sh)";
        return "";
    }
    return dir;
}

TempDir::TempDir() {
    char tmpl[] = "/tmp/kvmkit-test-XXXXXX";
    path_ = mkdtemp(tmpl);
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    std::string p = path_ + "/" + name;
    FILE* f = fopen(p.c_str(), "wb");
    if (f) {
        fwrite(bytes.data(), 1, bytes.size(), f);
        fclose(f);
    }
    return p;
}

std::vector<uint8_t> pseudo_random_bytes(size_t n, uint32_t seed) {
    std::vector<uint8_t> v(n);
    uint32_t x = seed ? seed : 1;
    for (auto& b : v) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b = static_cast<uint8_t>(x);
    }
    return v;
}

uint32_t crc32(const std::vector<uint8_t>& bytes) {
    uint32_t c = 0xffffffff;
    for (uint8_t b : bytes) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320 & (0u - (c & 1)));
    }
    return ~c;
}

}  // namespace kvmkit::test
