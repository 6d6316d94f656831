// A bounded byte history: keeps the last `capacity` bytes appended. The
// console socket replays it to a client that attaches, so the client sees
// the recent output (the prompt) at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kvmkit::vmm {

class ByteRing {
public:
    explicit ByteRing(size_t capacity) : buf_(capacity) {}

    void append(std::span<const uint8_t> bytes) {
        if (buf_.empty()) return;
        if (bytes.size() >= buf_.size()) bytes = bytes.last(buf_.size());  // only the tail survives
        for (uint8_t b : bytes) {
            buf_[head_] = b;
            head_ = (head_ + 1) % buf_.size();
        }
        size_ = std::min(size_ + bytes.size(), buf_.size());
    }

    // The kept bytes, oldest first.
    std::string contents() const {
        std::string out;
        out.reserve(size_);
        size_t start = (head_ + buf_.size() - size_) % (buf_.empty() ? 1 : buf_.size());
        for (size_t i = 0; i < size_; ++i) out.push_back(static_cast<char>(buf_[(start + i) % buf_.size()]));
        return out;
    }

    size_t size() const { return size_; }
    size_t capacity() const { return buf_.size(); }

private:
    std::vector<uint8_t> buf_;
    size_t head_ = 0;  // next write position
    size_t size_ = 0;
};

}  // namespace kvmkit::vmm
