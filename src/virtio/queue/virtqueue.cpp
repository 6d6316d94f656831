#include "virtio/queue/virtqueue.hpp"

#include <atomic>
#include <bit>
#include <cstdio>
#include <cstring>

namespace kvmkit::virtio {

using base::fail;
using base::Result;

static_assert(std::endian::native == std::endian::little, "virtqueue rings are little-endian; add byte swaps");

namespace {

// One entry of a descriptor table as laid out in guest memory (2.7.5).
struct RawDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
static_assert(sizeof(RawDesc) == 16);

constexpr uint64_t kDescSize = sizeof(RawDesc);
constexpr uint64_t kUsedElemSize = 8;
constexpr uint64_t kMaxChainBytes = uint64_t{1} << 32;  // 2.7.5.2: a chain is at most 2^32 bytes

// Layout of the rings for a queue of `size` entries.
constexpr uint64_t desc_table_bytes(uint64_t size) {
    return kDescSize * size;
}
constexpr uint64_t avail_ring_bytes(uint64_t size) {
    return 4 + 2 * size + 2;
}  // flags idx ring[] used_event
constexpr uint64_t used_ring_bytes(uint64_t size) {
    return 4 + kUsedElemSize * size + 2;
}  // flags idx ring[] avail_event
constexpr uint64_t kRingFlags = 0;
constexpr uint64_t kRingIdx = 2;
constexpr uint64_t kRingEntries = 4;

std::string hex(uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

// The 16-bit fields shared with the driver are accessed atomically (relaxed;
// ordering comes from explicit fences). SAFETY: `p` is 2-byte aligned and
// inside a ring checked at create().
uint16_t load_u16(const uint8_t* p) {
    return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(const_cast<uint8_t*>(p)))
        .load(std::memory_order_relaxed);
}
void store_u16(uint8_t* p, uint16_t v) {
    std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).store(v, std::memory_order_relaxed);
}
void store_u32(uint8_t* p, uint32_t v) {
    std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(p)).store(v, std::memory_order_relaxed);
}

// Copies descriptor `i` of a table out of guest memory, once; every check
// and use afterwards looks at the copy only (the guest may change the table
// concurrently).
RawDesc read_desc(const uint8_t* table, uint32_t i) {
    RawDesc d;
    std::memcpy(&d, table + uint64_t{i} * kDescSize, sizeof d);
    return d;
}

bool is_power_of_two(uint32_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}

// Names a descriptor in error messages; formatted only when something fails.
struct Where {
    uint32_t desc;
    int64_t indirect = -1;  // index in the indirect table named by `desc`, if any
    std::string str() const {
        std::string s = "descriptor " + std::to_string(desc);
        if (indirect >= 0) s += ", indirect descriptor " + std::to_string(indirect);
        return s;
    }
};

}  // namespace

uint64_t DescriptorChain::readable_bytes() const {
    uint64_t n = 0;
    for (const auto& d : readable) n += d.len;
    return n;
}

uint64_t DescriptorChain::writable_bytes() const {
    uint64_t n = 0;
    for (const auto& d : writable) n += d.len;
    return n;
}

// Accumulates validated buffers of one chain, across the direct table and at
// most one indirect table.
class Virtqueue::ChainBuilder {
public:
    ChainBuilder(const memory::GuestMemory& mem, uint16_t head) : mem_(mem) { chain_.head = head; }

    Result<void> add(const RawDesc& d, Where where) {
        bool writable = (d.flags & kVirtqDescFWrite) != 0;
        if (writable) {
            seen_writable_ = true;
        } else if (seen_writable_) {
            return fail(where.str() + ": device-readable buffer after a device-writable one");
        }
        total_ += d.len;
        if (total_ > kMaxChainBytes) return fail(where.str() + ": chain longer than 2^32 bytes");
        if (d.len == 0) return base::ok();  // nothing to access; address not checked
        if (!mem_.contains(d.addr, d.len))
            return fail(where.str() + ": buffer " + hex(d.addr) + "+" + hex(d.len) + " is outside guest memory");
        (writable ? chain_.writable : chain_.readable).push_back(Descriptor{d.addr, d.len, writable});
        return base::ok();
    }

    DescriptorChain take() && { return std::move(chain_); }

private:
    const memory::GuestMemory& mem_;
    DescriptorChain chain_;
    bool seen_writable_ = false;
    uint64_t total_ = 0;
};

Virtqueue::Virtqueue(const QueueConfig& cfg, memory::GuestMemory& mem, uint8_t* desc, uint8_t* avail, uint8_t* used)
    : cfg_(cfg),
      mem_(&mem),
      desc_(desc),
      avail_(avail),
      used_(used),
      next_avail_(cfg.next_avail),
      avail_shadow_(cfg.next_avail),
      next_used_(cfg.next_used),
      signalled_used_(cfg.next_used) {}

Result<Virtqueue> Virtqueue::create(const QueueConfig& cfg, memory::GuestMemory& mem) {
    if (!is_power_of_two(cfg.size) || cfg.size > kMaxSize)
        return fail("virtqueue: size " + std::to_string(cfg.size) + " is not a power of two in 1.." +
                    std::to_string(kMaxSize));
    if (cfg.desc_table % 16 != 0)
        return fail("virtqueue: descriptor table " + hex(cfg.desc_table) + " is not 16-byte aligned");
    if (cfg.avail_ring % 2 != 0)
        return fail("virtqueue: available ring " + hex(cfg.avail_ring) + " is not 2-byte aligned");
    if (cfg.used_ring % 4 != 0) return fail("virtqueue: used ring " + hex(cfg.used_ring) + " is not 4-byte aligned");

    // host_span checks [addr, addr+len) lies in one region without computing
    // addr+len, so addresses near 2^64 cannot wrap.
    struct Ring {
        const char* name;
        uint64_t addr;
        uint64_t len;
        uintptr_t host_align;
    };
    const Ring rings[3] = {
        {"descriptor table", cfg.desc_table, desc_table_bytes(cfg.size), 1},
        {"available ring", cfg.avail_ring, avail_ring_bytes(cfg.size), 2},
        {"used ring", cfg.used_ring, used_ring_bytes(cfg.size), 4},
    };
    uint8_t* host[3];
    for (int i = 0; i < 3; ++i) {
        auto span = mem.host_span(rings[i].addr, rings[i].len);
        if (span.empty())
            return fail(std::string("virtqueue: ") + rings[i].name + " " + hex(rings[i].addr) + "+" +
                        hex(rings[i].len) + " is not inside guest memory");
        // Guest alignment was checked above; the host mapping must agree for
        // the atomic 16/32-bit accesses (true for page-aligned regions).
        if (reinterpret_cast<uintptr_t>(span.data()) % rings[i].host_align != 0)
            return fail(std::string("virtqueue: ") + rings[i].name + " host mapping is misaligned");
        host[i] = span.data();
    }
    return Virtqueue(cfg, mem, host[0], host[1], host[2]);
}

uint16_t Virtqueue::avail_idx() const {
    return load_u16(avail_ + kRingIdx);
}

void Virtqueue::publish_avail_event() {
    store_u16(used_ + kRingEntries + kUsedElemSize * cfg_.size, next_avail_);
}

Result<DescriptorChain> Virtqueue::read_chain(uint16_t head) const {
    ChainBuilder chain(*mem_, head);
    const uint32_t size = cfg_.size;

    // The direct table: at most `size` descriptors, which also ends loops.
    uint32_t i = head;
    for (uint32_t count = 1;; ++count) {
        if (count > size) return fail("chain longer than the queue size " + std::to_string(size) + " (a loop?)");
        const RawDesc d = read_desc(desc_, i);
        const Where where{i};

        if (d.flags & kVirtqDescFIndirect) {
            // 2.7.5.3: zero or more direct descriptors, then one indirect one.
            if (!cfg_.indirect) return fail(where.str() + ": INDIRECT flag but VIRTIO_F_INDIRECT_DESC not negotiated");
            if (d.flags & kVirtqDescFNext) return fail(where.str() + ": both INDIRECT and NEXT set");
            if (d.len == 0 || d.len % kDescSize != 0)
                return fail(where.str() + ": indirect table length " + std::to_string(d.len) +
                            " is not a non-zero multiple of 16");
            const uint32_t entries = d.len / kDescSize;
            if (entries > kMaxIndirectEntries)
                return fail(where.str() + ": indirect table of " + std::to_string(entries) + " entries (max " +
                            std::to_string(kMaxIndirectEntries) + ")");
            auto table = mem_->host_span(d.addr, d.len);
            if (table.empty())
                return fail(where.str() + ": indirect table " + hex(d.addr) + "+" + hex(d.len) +
                            " is outside guest memory");
            // The WRITE flag of the descriptor naming the table is ignored (2.7.5.3.2).
            uint32_t j = 0;
            for (uint32_t icount = 1;; ++icount) {
                if (icount > entries)
                    return fail(where.str() + ": indirect chain longer than its table of " + std::to_string(entries) +
                                " entries (a loop?)");
                const RawDesc e = read_desc(table.data(), j);
                const Where iwhere{i, j};
                if (e.flags & kVirtqDescFIndirect) return fail(iwhere.str() + ": nested INDIRECT");
                TRY(chain.add(e, iwhere));
                if (!(e.flags & kVirtqDescFNext)) break;
                if (e.next >= entries)
                    return fail(iwhere.str() + ": next " + std::to_string(e.next) + " is outside the table of " +
                                std::to_string(entries));
                j = e.next;
            }
            break;  // an indirect descriptor ends the direct chain (it has no NEXT)
        }

        TRY(chain.add(d, where));
        if (!(d.flags & kVirtqDescFNext)) break;
        if (d.next >= size)
            return fail(where.str() + ": next " + std::to_string(d.next) + " is not below the queue size " +
                        std::to_string(size));
        i = d.next;
    }
    return std::move(chain).take();
}

std::optional<Result<DescriptorChain>> Virtqueue::pop() {
    bad_head_.reset();
    if (broken_) return Result<DescriptorChain>(fail("virtqueue is broken (the device needs a reset)"));

    if (next_avail_ == avail_shadow_) {
        uint16_t idx = avail_idx();
        if (idx == next_avail_ && cfg_.event_idx && notify_enabled_) {
            // About to report "empty": ask for a notification on the next
            // buffer, then look again, so a buffer added between our read
            // and the driver's read of avail_event is not missed.
            publish_avail_event();
            std::atomic_thread_fence(std::memory_order_seq_cst);
            idx = avail_idx();
        }
        if (idx == next_avail_) return std::nullopt;
        const uint16_t pending = static_cast<uint16_t>(idx - next_avail_);
        if (pending > cfg_.size) {
            broken_ = true;
            return Result<DescriptorChain>(fail("virtqueue broken: avail.idx " + std::to_string(idx) + " is " +
                                                std::to_string(pending) + " entries past " +
                                                std::to_string(next_avail_) + ", more than the queue size " +
                                                std::to_string(cfg_.size)));
        }
        avail_shadow_ = idx;
        // Ring entries and descriptors written before avail.idx are visible
        // after this.
        std::atomic_thread_fence(std::memory_order_acquire);
    }

    const uint16_t slot = next_avail_ & (cfg_.size - 1);
    const uint16_t head = load_u16(avail_ + kRingEntries + 2 * uint64_t{slot});
    ++next_avail_;

    if (head >= cfg_.size) {
        ++stats_.bad_chains;
        return Result<DescriptorChain>(fail("avail ring entry " + std::to_string(slot) + ": head " +
                                            std::to_string(head) + " is not below the queue size " +
                                            std::to_string(cfg_.size)));
    }
    auto chain = read_chain(head);
    ++in_flight_;
    if (!chain) {
        ++stats_.bad_chains;
        bad_head_ = head;
        return Result<DescriptorChain>(chain.error().context("chain at head " + std::to_string(head)));
    }
    ++stats_.chains;
    return chain;
}

Result<void> Virtqueue::push_used(uint16_t head, uint32_t written) {
    if (head >= cfg_.size)
        return fail("virtqueue: used head " + std::to_string(head) + " is not below the queue size " +
                    std::to_string(cfg_.size));
    if (in_flight_ == 0) return fail("virtqueue: push_used without an outstanding chain");
    --in_flight_;

    uint8_t* elem = used_ + kRingEntries + kUsedElemSize * (next_used_ & (cfg_.size - 1));
    store_u32(elem, head);
    store_u32(elem + 4, written);
    ++next_used_;
    // The element (and the data the device wrote into the buffers) must be
    // visible before the driver sees the new used.idx.
    std::atomic_thread_fence(std::memory_order_release);
    store_u16(used_ + kRingIdx, next_used_);
    ++stats_.used;
    return base::ok();
}

bool Virtqueue::should_notify() {
    const uint16_t old_idx = signalled_used_;
    const uint16_t new_idx = next_used_;
    signalled_used_ = new_idx;
    if (old_idx == new_idx) return false;

    // Our used.idx store must be visible before we read the driver's
    // suppression field, or both sides may decide not to act.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    bool notify;
    if (cfg_.event_idx) {
        // vring_need_event(used_event, new, old): did used.idx move past
        // used_event with the entries pushed since the last check?
        const uint16_t used_event = load_u16(avail_ + kRingEntries + 2 * uint64_t{cfg_.size});
        notify = static_cast<uint16_t>(new_idx - used_event - 1) < static_cast<uint16_t>(new_idx - old_idx);
    } else {
        notify = (load_u16(avail_ + kRingFlags) & kVirtqAvailFNoInterrupt) == 0;
    }
    ++(notify ? stats_.notifications : stats_.suppressed);
    return notify;
}

bool Virtqueue::enable_notification() {
    notify_enabled_ = true;
    if (cfg_.event_idx) {
        publish_avail_event();
    } else if (used_flags_ & kVirtqUsedFNoNotify) {
        used_flags_ &= static_cast<uint16_t>(~kVirtqUsedFNoNotify);
        store_u16(used_ + kRingFlags, used_flags_);
    }
    // The store above must be visible before we read avail.idx (2.7.10):
    // otherwise a buffer added now could go without a notification.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (broken_) return false;
    return avail_idx() != next_avail_;
}

void Virtqueue::disable_notification() {
    notify_enabled_ = false;
    if (!cfg_.event_idx && !(used_flags_ & kVirtqUsedFNoNotify)) {
        used_flags_ |= kVirtqUsedFNoNotify;
        store_u16(used_ + kRingFlags, used_flags_);
    }
}

}  // namespace kvmkit::virtio
