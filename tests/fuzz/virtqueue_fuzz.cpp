// libFuzzer target: the split virtqueue against an arbitrary guest.
//
// The input is a queue configuration, a short script of device/driver
// operations and an image of guest memory (rings, descriptors, indirect
// tables and data all come from the fuzzer). The device pops every chain,
// checks what the queue promises about it (each buffer inside guest memory,
// readable before writable, head in range, at most 2^32 bytes), touches the
// buffers through GuestMemory and returns them in the used ring. ASan/UBSan
// catch any access outside the regions or undefined behaviour.
//
// Input layout (little-endian):
//   [0]      queue size = 1 << (b & 15)
//   [1]      bit0 EVENT_IDX, bit1 INDIRECT_DESC, bit2 raw (unaligned) ring offsets
//   [2..3]   descriptor table offset in RAM
//   [4..5]   available ring offset in RAM
//   [6..7]   used ring offset in RAM
//   [8..9]   next_avail, [10..11] next_used (QueueConfig)
//   [12]     script length n
//   [13..13+n) script: one op per byte (low 3 bits op, high 5 bits argument;
//            see the switch below)
//   rest     guest memory image: RAM (64 KiB at 0x10000), then the region
//            adjacent to it (4 KiB at 0x20000), then a far one (4 KiB at
//            0x100000); zero-filled beyond the input.
//
// Built two ways: with clang as a libFuzzer binary (tests/fuzz/CMakeLists.txt,
// scripts/run-fuzz.sh) and with any compiler as a regression test over the
// seed corpus (tests/unit/virtio_queue/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <new>

#include "memory/guest_memory.hpp"
#include "virtio/queue/virtqueue.hpp"

namespace {

using kvmkit::memory::GuestMemory;
using kvmkit::virtio::DescriptorChain;
using kvmkit::virtio::QueueConfig;
using kvmkit::virtio::Virtqueue;

constexpr uint64_t kRamBase = 0x10000;
constexpr uint64_t kRamSize = 0x10000;
constexpr uint64_t kNearBase = kRamBase + kRamSize;  // adjacent to RAM
constexpr uint64_t kNearSize = 0x1000;
constexpr uint64_t kFarBase = 0x100000;
constexpr uint64_t kFarSize = 0x1000;

[[noreturn]] void invariant_failed(const char* what) {
    std::fprintf(stderr, "virtqueue_fuzz: invariant violated: %s\n", what);
    std::abort();
}
#define CHECK(cond)                           \
    do {                                      \
        if (!(cond)) invariant_failed(#cond); \
    } while (0)

uint16_t le16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

struct Region {
    explicit Region(uint64_t size) : size(size), data(new (std::align_val_t(4096)) uint8_t[size]()) {}
    struct Del {
        void operator()(uint8_t* p) const { operator delete[](p, std::align_val_t(4096)); }
    };
    uint64_t size;
    std::unique_ptr<uint8_t[], Del> data;
};

// Fills `r` from the input cursor.
void load(Region& r, const uint8_t*& p, const uint8_t* end) {
    size_t n = std::min<size_t>(static_cast<size_t>(end - p), r.size);
    if (n) std::memcpy(r.data.get(), p, n);
    p += n;
}

// What a device does with a chain: check the queue's promises and touch
// every byte range it was given (reads of readable buffers, writes of
// writable ones), through GuestMemory like a real device.
uint32_t consume(GuestMemory& mem, const QueueConfig& cfg, const DescriptorChain& c) {
    CHECK(c.head < cfg.size);
    uint64_t total = 0;
    for (const auto& d : c.readable) {
        CHECK(!d.device_writable);
        CHECK(d.len > 0);
        auto s = mem.host_span(d.addr, d.len);
        CHECK(s.size() == d.len);
        volatile uint8_t sink = s[0] ^ s[s.size() - 1];
        (void)sink;
        total += d.len;
    }
    for (const auto& d : c.writable) {
        CHECK(d.device_writable);
        CHECK(d.len > 0);
        auto s = mem.host_span(d.addr, d.len);
        CHECK(s.size() == d.len);
        s[0] = 0xa5;
        s[s.size() - 1] = 0x5a;
        total += d.len;
    }
    CHECK(total <= (uint64_t{1} << 32));
    CHECK(c.readable_bytes() + c.writable_bytes() == total);
    uint64_t w = c.writable_bytes();
    return w > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(w);
}

struct Harness {
    GuestMemory& mem;
    Virtqueue& q;
    std::deque<uint16_t> pending;  // popped heads not yet returned

    // One pop; returns false when the queue has nothing (or is broken).
    bool pop_one(bool complete) {
        auto r = q.pop();
        if (!r) return false;
        if (!*r) {
            if (q.broken()) {
                CHECK(!q.bad_head());
                return false;
            }
            if (auto h = q.bad_head()) {
                CHECK(*h < q.config().size);
                if (complete)
                    CHECK(q.push_used(*h, 0).has_value());
                else
                    pending.push_back(*h);
            }
            return true;
        }
        uint32_t written = consume(mem, q.config(), r->value());
        if (complete)
            CHECK(q.push_used(r->value().head, written).has_value());
        else
            pending.push_back(r->value().head);
        return true;
    }

    void drain() {
        // Without a broken queue, at most `size` chains are available at once
        // (more posts need our used entries first), so this terminates.
        for (uint32_t i = 0; i <= q.config().size && pop_one(true); ++i) {
        }
    }

    void complete_one() {
        if (pending.empty()) {
            // Every popped head is either returned or pending: a push now
            // would overwrite an entry the driver has not consumed.
            CHECK(q.in_flight() == 0);
            CHECK(!q.push_used(0, 0).has_value());
            return;
        }
        uint16_t h = pending.front();
        pending.pop_front();
        CHECK(q.push_used(h, 0).has_value());
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 13) return 0;
    const uint8_t* p = data;
    const uint8_t* end = data + size;

    QueueConfig cfg;
    cfg.size = static_cast<uint16_t>(1u << (p[0] & 15));
    cfg.event_idx = p[1] & 1;
    cfg.indirect = p[1] & 2;
    const bool raw = p[1] & 4;
    const uint16_t desc_off = le16(p + 2), avail_off = le16(p + 4), used_off = le16(p + 6);
    cfg.desc_table = kRamBase + (raw ? desc_off : (desc_off * 16u) % kRamSize);
    cfg.avail_ring = kRamBase + (raw ? avail_off : (avail_off * 2u) % kRamSize);
    cfg.used_ring = kRamBase + (raw ? used_off : (used_off * 4u) % kRamSize);
    cfg.next_avail = le16(p + 8);
    cfg.next_used = le16(p + 10);
    const size_t script_len = std::min<size_t>(p[12], size - 13);
    const uint8_t* script = p + 13;
    p += 13 + script_len;

    Region ram(kRamSize), near(kNearSize), far(kFarSize);
    load(ram, p, end);
    load(near, p, end);
    load(far, p, end);
    GuestMemory mem;
    CHECK(mem.add_borrowed(kRamBase, kRamSize, ram.data.get()).has_value());
    CHECK(mem.add_borrowed(kNearBase, kNearSize, near.data.get()).has_value());
    CHECK(mem.add_borrowed(kFarBase, kFarSize, far.data.get()).has_value());

    auto created = Virtqueue::create(cfg, mem);
    if (!created) return 0;
    Virtqueue q = std::move(created).value();
    Harness h{mem, q, {}};

    // The driver's side of the script pokes at the rings directly.
    auto poke16 = [&](uint64_t addr, uint16_t v) { (void)mem.write_obj<uint16_t>(addr, v); };
    const uint64_t avail_idx_at = cfg.avail_ring + 2;
    const uint64_t used_event_at = cfg.avail_ring + 4 + 2ull * cfg.size;

    if (script_len == 0) {
        h.drain();
        (void)q.should_notify();
        (void)q.enable_notification();
    }
    for (size_t i = 0; i < script_len; ++i) {
        const uint8_t op = script[i] & 7, arg = script[i] >> 3;
        switch (op) {
            case 0:
                h.drain();
                break;
            case 1:
                h.pop_one(false);
                break;
            case 2:
                if (arg & 16) {
                    // A device bug: a head the queue never handed out.
                    CHECK(!q.push_used(static_cast<uint16_t>(cfg.size + (arg & 15)), 0).has_value());
                } else {
                    h.complete_one();
                }
                break;
            case 3:
                (void)q.should_notify();
                break;
            case 4:
                (void)q.enable_notification();
                break;
            case 5:
                q.disable_notification();
                break;
            case 6: {  // the driver posts `arg` more entries (whatever the ring holds)
                auto idx = mem.read_obj<uint16_t>(avail_idx_at);
                if (idx) poke16(avail_idx_at, static_cast<uint16_t>(*idx + arg));
                break;
            }
            case 7:
                poke16(used_event_at, static_cast<uint16_t>(q.next_used() + arg - 16));
                break;
        }
    }
    // Finish like a device at reset: return whatever is outstanding.
    while (!h.pending.empty()) h.complete_one();
    h.drain();
    (void)q.should_notify();
    CHECK(q.stats().used <= q.stats().chains + q.stats().bad_chains);
    return 0;
}
