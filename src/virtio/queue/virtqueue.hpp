// The split virtqueue of virtio 1.x (virtio spec 1.2, section 2.7), device
// side, transport-agnostic. Everything the driver put in guest memory is
// untrusted: descriptors are copied out and checked before use (address
// range inside guest RAM without overflow, chain length at most the queue
// size, no loops, indirect tables well-formed, direction as the device needs).
// A bad chain is reported as an error for that chain only; the queue keeps
// working and nothing outside guest memory is ever touched.
//
// Follows: 2.7.5 descriptor table, 2.7.5.3 indirect descriptors, 2.7.6 avail
// ring, 2.7.7 used buffer notification suppression, 2.7.8 used ring, 2.7.10
// available buffer notification suppression, VIRTIO_F_EVENT_IDX.
// Leaves out: packed virtqueues, VIRTIO_F_IN_ORDER, big-endian hosts (the
// rings are little-endian; x86-64 only, checked at compile time).
//
// What the driver can get wrong, and what the queue does about it:
//   - an avail.idx more than `size` ahead of what we consumed: the queue is
//     broken (the device should set DEVICE_NEEDS_RESET); pop() returns an
//     error on every call from then on and broken() is true;
//   - a malformed chain (head/next out of range, loop or over-long chain,
//     INDIRECT not negotiated, INDIRECT with NEXT, nested indirect, bad
//     indirect table, a buffer outside guest RAM, a readable buffer after a
//     writable one, more than 2^32 bytes in total): pop() returns an error
//     for that chain only; the head, if in range, is in bad_head() so the
//     device can return it (push_used(head, 0)) and the driver doesn't leak it.
//
// Typical device loop (one thread owns the queue; nothing here is locked):
//
//     for (;;) {
//         while (auto r = q.pop()) {
//             if (!*r) {
//                 warn(r->error());                       // rate-limited
//                 if (q.broken()) { set_needs_reset(); return; }
//                 if (auto h = q.bad_head()) q.push_used(*h, 0);
//                 continue;
//             }
//             uint32_t written = process(**r);
//             (void)q.push_used(r->value().head, written);
//         }
//         if (q.should_notify()) irq.trigger();
//         if (!q.enable_notification()) break;           // re-check before sleeping
//     }
//
// pop() itself closes the lost-wakeup race when it finds the ring empty with
// EVENT_IDX (it publishes avail_event, fences and re-reads avail.idx), so the
// plain `while (pop())` loop is correct even without disable/enable.
//
// Memory ordering: the driver runs on other CPUs. pop() reads avail.idx and
// then issues an acquire fence before reading ring entries and descriptors;
// push_used() writes the used element, a release fence, then used.idx;
// should_notify() and enable_notification() put a full fence between their
// store and the load that decides (the classic store-load race of 2.7.10).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace kvmkit::virtio {

// Ring flags and descriptor flags (virtio spec 2.7.5, 2.7.6, 2.7.8).
inline constexpr uint16_t kVirtqDescFNext = 1;
inline constexpr uint16_t kVirtqDescFWrite = 2;
inline constexpr uint16_t kVirtqDescFIndirect = 4;
inline constexpr uint16_t kVirtqAvailFNoInterrupt = 1;
inline constexpr uint16_t kVirtqUsedFNoNotify = 1;

// One buffer of a chain, after validation: [addr, addr+len) lies inside one
// guest memory region, so GuestMemory::host_span(addr, len) succeeds for it.
struct Descriptor {
    uint64_t addr;
    uint32_t len;
    bool device_writable;  // VIRTQ_DESC_F_WRITE
};

// A descriptor chain as the device sees it: the driver-readable buffers
// first, then the device-writable ones (the spec requires this order).
// Zero-length buffers are dropped (their address is not checked); a chain
// may therefore be empty. Both byte totals fit in 2^32 (checked).
struct DescriptorChain {
    uint16_t head = 0;  // index to return in the used ring
    std::vector<Descriptor> readable;
    std::vector<Descriptor> writable;
    uint64_t readable_bytes() const;
    uint64_t writable_bytes() const;
};

struct QueueConfig {
    uint16_t size = 0;  // number of descriptors, a power of two, 1..Virtqueue::kMaxSize
    uint64_t desc_table = 0;
    uint64_t avail_ring = 0;
    uint64_t used_ring = 0;
    bool event_idx = false;  // VIRTIO_F_EVENT_IDX negotiated
    bool indirect = false;   // VIRTIO_F_INDIRECT_DESC negotiated
    // Ring positions to resume from (snapshot restore, tests of 16-bit
    // wrap-around); 0 on a freshly enabled queue.
    uint16_t next_avail = 0;
    uint16_t next_used = 0;
};

// Counters per queue, for the device's stats and for tests.
struct QueueStats {
    uint64_t chains = 0;         // well-formed chains popped
    uint64_t bad_chains = 0;     // chains rejected (malformed; the queue went on)
    uint64_t used = 0;           // entries published in the used ring
    uint64_t notifications = 0;  // should_notify() answered true
    uint64_t suppressed = 0;     // should_notify() answered false after a push
};

class Virtqueue {
public:
    static constexpr uint16_t kMaxSize = 32768;
    // The largest indirect table accepted (entries of 16 bytes). The spec
    // bounds a chain by the queue size; Linux may build larger indirect
    // tables than a small queue, so the bound is the largest queue size.
    static constexpr uint32_t kMaxIndirectEntries = kMaxSize;

    // Validates the configuration: size a power of two in 1..kMaxSize, ring
    // addresses aligned (desc 16, avail 2, used 4), each whole ring (with
    // used_event / avail_event, whether or not EVENT_IDX is negotiated)
    // inside one guest memory region. `mem` must outlive the queue, and its
    // regions must not go away while the queue exists (the ring host
    // addresses are resolved once here).
    static base::Result<Virtqueue> create(const QueueConfig& cfg, memory::GuestMemory& mem);

    Virtqueue(Virtqueue&&) = default;
    Virtqueue& operator=(Virtqueue&&) = default;
    Virtqueue(const Virtqueue&) = delete;
    Virtqueue& operator=(const Virtqueue&) = delete;

    // The next available chain, or nullopt when the driver has posted nothing
    // new. A malformed chain yields an Error (its head, if known, is in
    // `bad_head()` so the device may still return it with an error status or
    // zero length). Once the queue is broken every call yields an Error.
    std::optional<base::Result<DescriptorChain>> pop();
    // The head of the chain the last pop() rejected, if it was in range.
    // Reset by every pop().
    std::optional<uint16_t> bad_head() const { return bad_head_; }
    // The driver made more buffers available than the queue holds: nothing
    // more is popped; the device should set DEVICE_NEEDS_RESET.
    bool broken() const { return broken_; }

    // Puts `head` in the used ring with `written` bytes (the driver-visible
    // length the device wrote into writable buffers), then publishes used.idx
    // (release). Fails (and writes nothing) if `head` >= size or if no popped
    // chain is outstanding — a device bug that would overwrite entries the
    // driver has not consumed yet.
    base::Result<void> push_used(uint16_t head, uint32_t written);

    // After a batch of push_used: whether the driver wants an interrupt
    // (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX, using
    // vring_need_event over the entries pushed since the previous call).
    // False when nothing was pushed since the previous call.
    bool should_notify();

    // Asks the driver to notify again on new buffers: with EVENT_IDX writes
    // avail_event = next_avail(), otherwise clears VIRTQ_USED_F_NO_NOTIFY;
    // then a full fence. Call before sleeping on the queue; returns true if
    // buffers are available (pop before sleeping). False if broken.
    bool enable_notification();
    // Tells the driver notifications are not needed while the device is
    // polling: sets VIRTQ_USED_F_NO_NOTIFY (without EVENT_IDX), or stops
    // pop() from advancing avail_event (with EVENT_IDX). A hint only.
    void disable_notification();

    const QueueConfig& config() const { return cfg_; }
    const QueueStats& stats() const { return stats_; }
    uint16_t next_avail() const { return next_avail_; }  // avail ring entries consumed (mod 2^16)
    uint16_t next_used() const { return next_used_; }    // used.idx as last published
    uint64_t in_flight() const { return in_flight_; }    // popped (incl. returnable bad chains), not yet used

private:
    Virtqueue(const QueueConfig& cfg, memory::GuestMemory& mem, uint8_t* desc, uint8_t* avail, uint8_t* used);

    class ChainBuilder;
    base::Result<DescriptorChain> read_chain(uint16_t head) const;

    uint16_t avail_idx() const;
    void publish_avail_event();

    QueueConfig cfg_;
    memory::GuestMemory* mem_;
    // SAFETY: host addresses of the three rings, each checked at create() to
    // lie wholly inside one region of *mem_ (which outlives the queue).
    uint8_t* desc_;
    uint8_t* avail_;
    uint8_t* used_;

    uint16_t next_avail_;         // our last_avail_idx
    uint16_t avail_shadow_;       // avail.idx as last read (<= size ahead of next_avail_)
    uint16_t next_used_;          // used.idx we last published
    uint16_t signalled_used_;     // next_used_ at the previous should_notify()
    uint16_t used_flags_ = 0;     // our copy of used.flags (the device owns it)
    bool notify_enabled_ = true;  // enable_notification() vs disable_notification()
    bool broken_ = false;
    uint64_t in_flight_ = 0;
    std::optional<uint16_t> bad_head_;
    QueueStats stats_;
};

}  // namespace kvmkit::virtio
