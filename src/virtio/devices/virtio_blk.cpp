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

VirtioBlk::VirtioBlk(DiskImage image, std::string serial, event::EventLoop* loop)
    : image_(std::move(image)), serial_(std::move(serial)), loop_(loop), in_flight_(kQueueSize) {
    if (!loop_) return;
    auto aio = AsyncIo::create(kQueueSize);
    if (!aio) {
        LOG_WARN("virtio-blk '%s': io_uring unavailable (%s); serving requests synchronously", image_.path().c_str(),
                 aio.error().message().c_str());
        return;
    }
    aio_ = std::move(*aio);
    if (auto r = loop_->add(aio_->event_fd(), [this](uint32_t) { on_completions(); }); !r) {
        LOG_WARN("virtio-blk: %s; serving requests synchronously", r.error().message().c_str());
        aio_.reset();
    }
}

VirtioBlk::~VirtioBlk() {
    if (aio_ && loop_) (void)loop_->remove(aio_->event_fd());
    std::lock_guard lock(mutex_);
    wait_in_flight();
}

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
    std::lock_guard lock(mutex_);
    return counters_;
}

VirtioDevice::IoCounters VirtioBlk::io_counters() const {
    Counters c = counters();
    return {{"reads", c.reads},           {"writes", c.writes},
            {"flushes", c.flushes},       {"errors", c.errors},
            {"bytes_read", c.bytes_read}, {"bytes_written", c.bytes_written},
            {"bad_chains", bad_chains()}};
}

void VirtioBlk::process_queue(uint16_t queue) {
    std::lock_guard lock(mutex_);
    if (queue >= queues_.size() || !queues_[queue]) return;
    auto& vq = *queues_[queue];
    bool submitted = false;
    for (;;) {
        auto next = vq.pop();
        if (!next) {
            if (!vq.enable_notification()) break;
            continue;
        }
        if (!next->has_value()) {
            ++counters_.errors;
            if (!reject_bad_chain(vq, next->error(), pending_notify_)) break;
            continue;
        }
        Request req;
        uint8_t status = kStatusOk;
        if (!parse(**next, req, status)) {
            ++counters_.errors;
            (void)vq.push_used((*next)->head, 0);  // not even room for a status byte
            pending_notify_ = true;
            continue;
        }
        if (status != kStatusOk) {
            complete(req.head, req.status_addr, status, 0);
            continue;
        }
        if (aio_ && submit_async(std::move(req))) {
            submitted = true;
            continue;
        }
        uint32_t written = 0;
        status = execute_sync(req, written);
        complete(req.head, req.status_addr, status, written);
    }
    if (submitted) aio_->submit();
    if (pending_notify_ && vq.should_notify()) irq_->signal_queue(0);
    pending_notify_ = false;
}

void VirtioBlk::complete(uint16_t head, uint64_t status_addr, uint8_t status, uint32_t written) {
    if (status != kStatusOk) ++counters_.errors;
    if (queues_.empty() || !queues_[0]) return;  // reset while in flight: the queue is gone
    if (!mem_->write_obj(status_addr, status)) written = 0;
    else ++written;  // the status byte
    (void)queues_[0]->push_used(head, written);
    pending_notify_ = true;
}

bool VirtioBlk::parse(const DescriptorChain& chain, Request& req, uint8_t& status) {
    req.head = chain.head;
    if (chain.writable.empty() || chain.writable_bytes() == 0) return false;
    // The status byte is the last byte of the device-writable part.
    const auto& last = chain.writable.back();
    if (last.len == 0) return false;
    req.status_addr = last.addr + last.len - 1;

    // The 16-byte header, possibly split across readable buffers.
    uint8_t hdr_bytes[sizeof(RequestHeader)];
    size_t got = 0;
    uint64_t skip_left = sizeof(RequestHeader);
    for (const auto& d : chain.readable) {
        uint64_t take = std::min<uint64_t>(d.len, sizeof(RequestHeader) - got);
        if (take && !mem_->read(d.addr, hdr_bytes + got, take)) break;
        got += take;
        // Whatever follows the header in this buffer is request data.
        if (d.len > take) {
            auto s = mem_->host_span(d.addr + take, d.len - take);
            if (s.empty()) return false;
            req.riov.push_back({s.data(), s.size()});
            req.rbytes += s.size();
        }
        skip_left -= take;
    }
    if (got < sizeof(RequestHeader)) {
        status = kStatusIoErr;
        return true;
    }
    RequestHeader hdr;
    std::memcpy(&hdr, hdr_bytes, sizeof hdr);
    req.type = hdr.type;
    req.sector = hdr.sector;

    uint64_t data_len = chain.writable_bytes() - 1;
    for (const auto& d : chain.writable) {
        uint64_t n = std::min<uint64_t>(d.len, data_len - req.wbytes);
        if (n == 0) break;
        auto s = mem_->host_span(d.addr, n);
        if (s.empty()) return false;
        req.wiov.push_back({s.data(), s.size()});
        req.wbytes += n;
    }
    if (req.riov.size() > kSegMax + 1 || req.wiov.size() > kSegMax + 1) status = kStatusIoErr;
    return true;
}

uint8_t VirtioBlk::execute_sync(const Request& req, uint32_t& written) {
    const uint64_t capacity = image_.size() / kSectorSize;
    auto in_range = [&](uint64_t sector, uint64_t bytes) {
        return bytes % kSectorSize == 0 && sector <= capacity && bytes / kSectorSize <= capacity - sector;
    };
    switch (req.type) {
        case kTypeIn:
            if (!in_range(req.sector, req.wbytes)) return kStatusIoErr;
            if (!image_.readv(req.sector * kSectorSize, req.wiov)) return kStatusIoErr;
            ++counters_.reads;
            counters_.bytes_read += req.wbytes;
            written = static_cast<uint32_t>(req.wbytes);
            return kStatusOk;
        case kTypeOut:
            if (image_.readonly()) return kStatusIoErr;
            if (!in_range(req.sector, req.rbytes)) return kStatusIoErr;
            if (!image_.writev(req.sector * kSectorSize, req.riov)) return kStatusIoErr;
            ++counters_.writes;
            counters_.bytes_written += req.rbytes;
            return kStatusOk;
        case kTypeFlush:
            ++counters_.flushes;
            if (image_.readonly()) return kStatusOk;
            return image_.flush() ? kStatusOk : kStatusIoErr;
        case kTypeGetId: {
            uint8_t id[kIdBytes] = {};
            std::memcpy(id, serial_.data(), std::min<size_t>(serial_.size(), kIdBytes));
            uint64_t n = std::min<uint64_t>(req.wbytes, kIdBytes), done = 0;
            for (const auto& v : req.wiov) {
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
            if (req.rbytes == 0 || req.rbytes % sizeof(DiscardSegment)) return kStatusIoErr;
            if (req.rbytes / sizeof(DiscardSegment) > kMaxDiscardSegments) return kStatusUnsupp;
            std::vector<uint8_t> segs;
            for (const auto& v : req.riov)
                segs.insert(segs.end(), static_cast<uint8_t*>(v.iov_base), static_cast<uint8_t*>(v.iov_base) + v.iov_len);
            for (size_t i = 0; i + sizeof(DiscardSegment) <= segs.size(); i += sizeof(DiscardSegment)) {
                DiscardSegment seg;
                std::memcpy(&seg, segs.data() + i, sizeof seg);
                if (seg.num_sectors > kMaxDiscardSectors) return kStatusIoErr;
                if (!in_range(seg.sector, uint64_t(seg.num_sectors) * kSectorSize)) return kStatusIoErr;
                uint64_t off = seg.sector * kSectorSize, len = uint64_t(seg.num_sectors) * kSectorSize;
                bool ok = req.type == kTypeDiscard ? static_cast<bool>(image_.discard(off, len))
                                                   : static_cast<bool>(image_.write_zeroes(off, len));
                if (!ok) return kStatusIoErr;
            }
            return kStatusOk;
        }
        default: return kStatusUnsupp;
    }
}

bool VirtioBlk::submit_async(Request&& req) {
    const uint64_t capacity = image_.size() / kSectorSize;
    bool is_rw = req.type == kTypeIn || req.type == kTypeOut;
    if (!is_rw && !(req.type == kTypeFlush && !image_.readonly())) return false;  // served synchronously
    if (is_rw) {
        uint64_t bytes = req.type == kTypeIn ? req.wbytes : req.rbytes;
        if (bytes == 0 || bytes % kSectorSize || req.sector > capacity || bytes / kSectorSize > capacity - req.sector)
            return false;  // the sync path reports the error
        if (req.type == kTypeOut && image_.readonly()) return false;
        if (image_.needs_bounce(req.sector * kSectorSize, req.type == kTypeIn ? req.wiov : req.riov)) return false;
    }
    size_t slot = 0;
    while (slot < in_flight_.size() && in_flight_[slot]) ++slot;
    if (slot == in_flight_.size()) return false;
    in_flight_[slot] = std::move(req);
    Request& r = *in_flight_[slot];
    bool ok;
    switch (r.type) {
        case kTypeIn:
            ok = aio_->readv(image_.fd(), r.wiov.data(), static_cast<unsigned>(r.wiov.size()), r.sector * kSectorSize, slot);
            break;
        case kTypeOut:
            ok = aio_->writev(image_.fd(), r.riov.data(), static_cast<unsigned>(r.riov.size()), r.sector * kSectorSize, slot);
            break;
        default: ok = aio_->fdatasync(image_.fd(), slot); break;
    }
    if (!ok) {
        req = std::move(r);
        in_flight_[slot].reset();
        return false;
    }
    ++in_flight_count_;
    return true;
}

void VirtioBlk::on_completions() {
    std::lock_guard lock(mutex_);
    if (!aio_) return;
    aio_->reap([this](uint64_t slot, int32_t res) {
        if (slot >= in_flight_.size() || !in_flight_[slot]) return;
        Request r = std::move(*in_flight_[slot]);
        in_flight_[slot].reset();
        --in_flight_count_;
        uint64_t expect = r.type == kTypeIn ? r.wbytes : r.type == kTypeOut ? r.rbytes : 0;
        uint8_t status = res >= 0 && uint64_t(res) == expect ? kStatusOk : kStatusIoErr;
        if (r.type == kTypeIn && res >= 0 && uint64_t(res) < expect) {
            // A short read at the end of the image: the rest reads as zeroes.
            uint64_t skip = res;
            for (auto& v : r.wiov) {
                if (skip >= v.iov_len) {
                    skip -= v.iov_len;
                    continue;
                }
                std::memset(static_cast<uint8_t*>(v.iov_base) + skip, 0, v.iov_len - skip);
                skip = 0;
            }
            status = kStatusOk;
        }
        if (status == kStatusOk) {
            if (r.type == kTypeIn) ++counters_.reads, counters_.bytes_read += expect;
            if (r.type == kTypeOut) ++counters_.writes, counters_.bytes_written += expect;
            if (r.type == kTypeFlush) ++counters_.flushes;
        }
        complete(r.head, r.status_addr, status, r.type == kTypeIn && status == kStatusOk ? uint32_t(expect) : 0);
    });
    if (pending_notify_ && !queues_.empty() && queues_[0] && queues_[0]->should_notify()) irq_->signal_queue(0);
    pending_notify_ = false;
}

void VirtioBlk::wait_in_flight() {
    // Guest buffers are referenced by the kernel until each request completes: wait for all of them.
    while (aio_ && in_flight_count_ > 0) {
        aio_->reap(
            [this](uint64_t slot, int32_t) {
                if (slot < in_flight_.size() && in_flight_[slot]) {
                    in_flight_[slot].reset();
                    --in_flight_count_;
                }
            },
            true);
    }
}

void VirtioBlk::reset() {
    std::lock_guard lock(mutex_);
    wait_in_flight();
    queues_.clear();
    mem_ = nullptr;
    irq_ = nullptr;
    features_ = 0;
}

}  // namespace kvmkit::virtio
