#include "virtio/devices/virtio_rng.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cstring>

namespace kvmkit::virtio {

namespace {
// Per request: a guest asking for gigabytes gets what fits here, as the spec allows.
constexpr uint32_t kMaxBytesPerRequest = 64 * 1024;
}  // namespace

void VirtioRng::read_config(uint64_t, std::span<uint8_t> data) { std::memset(data.data(), 0, data.size()); }

void VirtioRng::process_queue(uint16_t queue) {
    std::lock_guard lock(mutex_);
    drain(queue, [&](const DescriptorChain& chain) -> uint32_t {
        uint32_t written = 0;
        for (const auto& d : chain.writable) {
            uint32_t want = std::min<uint32_t>(d.len, kMaxBytesPerRequest - written);
            auto span = mem_->host_span(d.addr, want);
            if (span.empty()) break;
            ssize_t n = getrandom(span.data(), span.size(), 0);
            if (n <= 0) break;
            written += static_cast<uint32_t>(n);
            if (written >= kMaxBytesPerRequest || static_cast<uint32_t>(n) < want) break;
        }
        return written;
    });
}

}  // namespace kvmkit::virtio
