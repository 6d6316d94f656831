#include "virtio/devices/virtio_blk.hpp"

#include <algorithm>
#include <cstring>

namespace kvmkit::virtio {

namespace {
constexpr uint64_t kFeatSizeMax = 1ull << 1, kFeatSegMax = 1ull << 2, kFeatRo = 1ull << 5,
                   kFeatBlkSize = 1ull << 6, kFeatFlush = 1ull << 9, kFeatDiscard = 1ull << 13,
                   kFeatWriteZeroes = 1ull << 14;
constexpr uint32_t kTypeIn = 0, kTypeOut = 1, kTypeFlush = 4, kTypeGetId = 8, kTypeDiscard = 11,
                   kTypeWriteZeroes = 13;
constexpr uint8_t kStatusOk = 0, kStatusIoErr = 1, kStatusUnsupp = 2;
constexpr uint32_t kIdBytes = 20;
constexpr uint32_t kMaxDiscardSectors = 1u << 22;  // 2 GiB per segment
constexpr uint32_t kMaxDiscardSegments = 1;

struct RequestHeader {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
struct DiscardSegment {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};

#pragma pack(push, 1)
struct BlkConfig {
    uint64_t capacity;
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors;
    uint32_t blk_size;
    uint8_t physical_block_exp;
    uint8_t alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t writeback;
    uint8_t unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
};
#pragma pack(pop)
static_assert(sizeof(BlkConfig) == 60);
}  // namespace

VirtioBlk::VirtioBlk(DiskImage image, std::string serial) : image_(std::move(image)), serial_(std::move(serial)) {}

uint64_t VirtioBlk::device_features() const {
    uint64_t f = kFeatSizeMax | kFeatSegMax | kFeatBlkSize | kFeatFlush;
    if (image_.readonly()) f |= kFeatRo;
    else f |= kFeatDiscard | kFeatWriteZeroes;
    return f;
}

void VirtioBlk::read_config(uint64_t offset, std::span<uint8_t> data) {
    BlkConfig c{};
    c.capacity = image_.size() / kSectorSize;
    c.size_max = 1u << 20;
    c.seg_max = kSegMax;
    c.blk_size = kSectorSize;
    c.num_queues = 1;
    c.max_discard_sectors = kMaxDiscardSectors;
    c.max_discard_seg = kMaxDiscardSegments;
    c.discard_sector_alignment = 1;
    c.max_write_zeroes_sectors = kMaxDiscardSectors;
    c.max_write_zeroes_seg = kMaxDiscardSegments;
    c.write_zeroes_may_unmap = 1;
    const auto* raw = reinterpret_cast<const uint8_t*>(&c);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof c ? raw[offset + i] : 0;
}

VirtioBlk::Counters VirtioBlk::counters() const {
    std::lock_guard lock(const_cast<std::mutex&>(mutex_));
    return counters_;
}

void VirtioBlk::process_queue(uint16_t queue) {
    std::lock_guard lock(mutex_);
    drain(queue, [&](const DescriptorChain& chain) -> uint32_t {
        uint32_t written = 0;
        uint8_t status = handle(chain, written);
        if (status != kStatusOk) ++counters_.errors;
        // The status byte is the last byte of the last writable buffer.
        if (chain.writable.empty() || chain.writable.back().len == 0) return 0;
        const auto& last = chain.writable.back();
        if (!mem_->write_obj(last.addr + last.len - 1, status)) return 0;
        return written + 1;
    });
}

uint8_t VirtioBlk::handle(const DescriptorChain& chain, uint32_t& written) {
    // The header: 16 bytes at the start of the readable part (it may be split across buffers).
    std::vector<uint8_t> readable;
    uint64_t readable_total = chain.readable_bytes();
    auto gather = [&](uint64_t skip, uint64_t len, std::vector<uint8_t>& out) -> bool {
        out.clear();
        for (const auto& d : chain.readable) {
            if (skip >= d.len) {
                skip -= d.len;
                continue;
            }
            uint64_t n = std::min<uint64_t>(d.len - skip, len - out.size());
            size_t old = out.size();
            out.resize(old + n);
            if (!mem_->read(d.addr + skip, out.data() + old, n)) return false;
            skip = 0;
            if (out.size() == len) break;
        }
        return out.size() == len;
    };
    if (readable_total < sizeof(RequestHeader) || chain.writable.empty()) return kStatusIoErr;
    if (!gather(0, sizeof(RequestHeader), readable)) return kStatusIoErr;
    RequestHeader hdr;
    std::memcpy(&hdr, readable.data(), sizeof hdr);

    // Device-writable data: everything but the final status byte.
    std::vector<iovec> wiov;
    uint64_t wbytes = 0;
    uint64_t writable_total = chain.writable_bytes();
    if (writable_total == 0) return kStatusIoErr;
    uint64_t data_out_len = writable_total - 1;
    for (const auto& d : chain.writable) {
        uint64_t n = std::min<uint64_t>(d.len, data_out_len - wbytes);
        if (n == 0) break;
        auto s = mem_->host_span(d.addr, n);
        if (s.empty()) return kStatusIoErr;
        wiov.push_back({s.data(), s.size()});
        wbytes += n;
    }
    // Driver-readable data after the header.
    std::vector<iovec> riov;
    uint64_t rbytes = 0;
    {
        uint64_t skip = sizeof(RequestHeader);
        for (const auto& d : chain.readable) {
            if (skip >= d.len) {
                skip -= d.len;
                continue;
            }
            auto s = mem_->host_span(d.addr + skip, d.len - skip);
            if (s.empty()) return kStatusIoErr;
            riov.push_back({s.data(), s.size()});
            rbytes += s.size();
            skip = 0;
        }
    }

    const uint64_t capacity = image_.size() / kSectorSize;
    auto in_range = [&](uint64_t sector, uint64_t bytes) {
        return bytes % kSectorSize == 0 && sector <= capacity && bytes / kSectorSize <= capacity - sector;
    };

    switch (hdr.type) {
        case kTypeIn:
            if (!in_range(hdr.sector, wbytes)) return kStatusIoErr;
            if (!image_.readv(hdr.sector * kSectorSize, wiov)) return kStatusIoErr;
            ++counters_.reads;
            counters_.bytes_read += wbytes;
            written = static_cast<uint32_t>(wbytes);
            return kStatusOk;
        case kTypeOut:
            if (image_.readonly()) return kStatusIoErr;
            if (!in_range(hdr.sector, rbytes)) return kStatusIoErr;
            if (!image_.writev(hdr.sector * kSectorSize, riov)) return kStatusIoErr;
            ++counters_.writes;
            counters_.bytes_written += rbytes;
            return kStatusOk;
        case kTypeFlush:
            ++counters_.flushes;
            if (image_.readonly()) return kStatusOk;
            return image_.flush() ? kStatusOk : kStatusIoErr;
        case kTypeGetId: {
            uint8_t id[kIdBytes] = {};
            std::memcpy(id, serial_.data(), std::min<size_t>(serial_.size(), kIdBytes));
            uint64_t n = std::min<uint64_t>(wbytes, kIdBytes);
            uint64_t done = 0;
            for (const auto& v : wiov) {
                uint64_t k = std::min<uint64_t>(v.iov_len, n - done);
                std::memcpy(v.iov_base, id + done, k);
                done += k;
                if (done == n) break;
            }
            written = static_cast<uint32_t>(n);
            return kStatusOk;
        }
        case kTypeDiscard:
        case kTypeWriteZeroes: {
            if (image_.readonly()) return kStatusIoErr;
            if (rbytes == 0 || rbytes % sizeof(DiscardSegment)) return kStatusIoErr;
            if (rbytes / sizeof(DiscardSegment) > kMaxDiscardSegments) return kStatusUnsupp;
            std::vector<uint8_t> segs;
            if (!gather(sizeof(RequestHeader), rbytes, segs)) return kStatusIoErr;
            for (size_t i = 0; i < segs.size(); i += sizeof(DiscardSegment)) {
                DiscardSegment s;
                std::memcpy(&s, segs.data() + i, sizeof s);
                if (s.num_sectors > kMaxDiscardSectors) return kStatusIoErr;
                if (!in_range(s.sector, uint64_t(s.num_sectors) * kSectorSize)) return kStatusIoErr;
                uint64_t off = s.sector * kSectorSize, len = uint64_t(s.num_sectors) * kSectorSize;
                bool ok = hdr.type == kTypeDiscard ? static_cast<bool>(image_.discard(off, len))
                                                   : static_cast<bool>(image_.write_zeroes(off, len));
                if (!ok) return kStatusIoErr;
            }
            return kStatusOk;
        }
        default: return kStatusUnsupp;
    }
}

}  // namespace kvmkit::virtio
