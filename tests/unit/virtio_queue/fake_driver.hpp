// A fake virtio driver: the guest side of a split virtqueue, written the way
// Linux's virtio_ring.c lays things out. It owns page-aligned host memory
// registered as guest memory, places the descriptor table, available ring and
// used ring in it, adds chains (direct or through an indirect table), sets
// the notification-suppression fields, and reads back the used ring.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "memory/guest_memory.hpp"
#include "virtio/queue/virtqueue.hpp"

namespace kvmkit::virtio::testing {

class FakeDriver {
public:
    // Main RAM region [kBase, kBase + kMemSize), and a second region right
    // after it (adjacent but separate) for buffers that straddle regions.
    static constexpr uint64_t kBase = 0x100000;
    static constexpr uint64_t kMemSize = 2 << 20;
    static constexpr uint64_t kHighBase = kBase + kMemSize;
    static constexpr uint64_t kHighSize = 0x1000;

    struct Buf {
        uint64_t addr;
        uint32_t len;
        bool write;
    };
    struct UsedElem {
        uint32_t id;
        uint32_t len;
    };

    explicit FakeDriver(uint16_t size, bool event_idx = false, bool indirect = false)
        : size_(size), ram_(alloc_pages(kMemSize)), high_(alloc_pages(kHighSize)) {
        if (!mem.add_borrowed(kBase, kMemSize, ram_.get())) throw std::runtime_error("add_borrowed");
        if (!mem.add_borrowed(kHighBase, kHighSize, high_.get())) throw std::runtime_error("add_borrowed");
        cfg_.size = size;
        cfg_.event_idx = event_idx;
        cfg_.indirect = indirect;
        cfg_.desc_table = kBase;
        cfg_.avail_ring = cfg_.desc_table + 16ull * size;
        cfg_.used_ring = align_up(cfg_.avail_ring + 6 + 2ull * size, 4096);
        data_next_ = align_up(cfg_.used_ring + 6 + 8ull * size, 4096);
    }
    FakeDriver(const FakeDriver&) = delete;
    FakeDriver& operator=(const FakeDriver&) = delete;

    memory::GuestMemory mem;

    QueueConfig config() const { return cfg_; }
    QueueConfig& mutable_config() { return cfg_; }
    uint16_t size() const { return size_; }

    // Guest address of a fresh data buffer of `len` bytes (16-byte aligned).
    uint64_t alloc(uint64_t len) {
        uint64_t a = data_next_;
        data_next_ = align_up(data_next_ + len, 16);
        if (data_next_ > kBase + kMemSize) throw std::runtime_error("fake driver out of memory");
        return a;
    }

    // Raw pokes into the rings, for malformed layouts.
    void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
        write_desc(cfg_.desc_table + 16ull * i, addr, len, flags, next);
    }
    void write_desc(uint64_t at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
        put<uint64_t>(at, addr);
        put<uint32_t>(at + 8, len);
        put<uint16_t>(at + 12, flags);
        put<uint16_t>(at + 14, next);
    }
    void set_avail_entry(uint16_t slot, uint16_t head) { put<uint16_t>(cfg_.avail_ring + 4 + 2ull * slot, head); }
    void set_avail_idx(uint16_t idx) {
        avail_idx_ = idx;
        put<uint16_t>(cfg_.avail_ring + 2, idx);
    }
    void set_avail_flags(uint16_t f) { put<uint16_t>(cfg_.avail_ring, f); }
    void set_used_event(uint16_t v) { put<uint16_t>(cfg_.avail_ring + 4 + 2ull * size_, v); }
    // Resume the driver's idea of avail.idx (matches QueueConfig::next_avail).
    void start_at(uint16_t avail_idx) {
        avail_idx_ = avail_idx;
        set_avail_idx(avail_idx);
    }

    // Makes `head` available: ring[idx % size] = head, then idx++ (published).
    void offer(uint16_t head) {
        set_avail_entry(avail_idx_ % size_, head);
        set_avail_idx(static_cast<uint16_t>(avail_idx_ + 1));
    }

    // Writes `bufs` as a chain of direct descriptors starting at the next
    // free descriptor (wrapping), and offers it. Returns the head.
    uint16_t add_chain(const std::vector<Buf>& bufs) {
        uint16_t head = next_desc_;
        for (size_t k = 0; k < bufs.size(); ++k) {
            uint16_t i = next_desc_;
            next_desc_ = static_cast<uint16_t>((next_desc_ + 1) % size_);
            bool last = k + 1 == bufs.size();
            uint16_t flags =
                static_cast<uint16_t>((bufs[k].write ? kVirtqDescFWrite : 0) | (last ? 0 : kVirtqDescFNext));
            set_desc(i, bufs[k].addr, bufs[k].len, flags, last ? 0 : next_desc_);
        }
        offer(head);
        return head;
    }

    // Writes `bufs` into a new indirect table (entries 0..n-1 chained in
    // order) and one direct descriptor pointing at it; offers it.
    uint16_t add_indirect_chain(const std::vector<Buf>& bufs) {
        uint64_t table = write_indirect_table(bufs);
        uint16_t head = next_desc_;
        next_desc_ = static_cast<uint16_t>((next_desc_ + 1) % size_);
        set_desc(head, table, static_cast<uint32_t>(16 * bufs.size()), kVirtqDescFIndirect, 0);
        offer(head);
        return head;
    }
    uint64_t write_indirect_table(const std::vector<Buf>& bufs) {
        uint64_t table = alloc(16 * bufs.size());
        for (size_t k = 0; k < bufs.size(); ++k) {
            bool last = k + 1 == bufs.size();
            uint16_t flags =
                static_cast<uint16_t>((bufs[k].write ? kVirtqDescFWrite : 0) | (last ? 0 : kVirtqDescFNext));
            write_desc(table + 16 * k, bufs[k].addr, bufs[k].len, flags, last ? 0 : static_cast<uint16_t>(k + 1));
        }
        return table;
    }

    uint16_t used_idx() const { return get<uint16_t>(cfg_.used_ring + 2); }
    uint16_t used_flags() const { return get<uint16_t>(cfg_.used_ring); }
    uint16_t avail_event() const { return get<uint16_t>(cfg_.used_ring + 4 + 8ull * size_); }
    void set_avail_event(uint16_t v) { put<uint16_t>(cfg_.used_ring + 4 + 8ull * size_, v); }
    UsedElem used(uint16_t slot) const {
        return {get<uint32_t>(cfg_.used_ring + 4 + 8ull * (slot % size_)),
                get<uint32_t>(cfg_.used_ring + 8 + 8ull * (slot % size_))};
    }

    template <typename T>
    void put(uint64_t addr, T v) {
        if (!mem.write_obj(addr, v)) throw std::runtime_error("fake driver write outside memory");
    }
    template <typename T>
    T get(uint64_t addr) const {
        auto r = mem.read_obj<T>(addr);
        if (!r) throw std::runtime_error("fake driver read outside memory");
        return *r;
    }

    static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

private:
    struct Free {
        void operator()(uint8_t* p) const { std::free(p); }
    };
    static std::unique_ptr<uint8_t[], Free> alloc_pages(uint64_t len) {
        auto* p = static_cast<uint8_t*>(std::aligned_alloc(4096, len));
        if (!p) throw std::bad_alloc();
        std::memset(p, 0, len);
        return std::unique_ptr<uint8_t[], Free>(p);
    }

    uint16_t size_;
    std::unique_ptr<uint8_t[], Free> ram_;
    std::unique_ptr<uint8_t[], Free> high_;
    QueueConfig cfg_;
    uint64_t data_next_;
    uint16_t avail_idx_ = 0;
    uint16_t next_desc_ = 0;
};

}  // namespace kvmkit::virtio::testing
