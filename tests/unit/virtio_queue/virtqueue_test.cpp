// Split virtqueue, device side, driven by a fake guest driver (fake_driver.hpp).
// Each validation rule of virtqueue.hpp has a test that fails without it.
#include "virtio/queue/virtqueue.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>

#include "fake_driver.hpp"

using kvmkit::virtio::DescriptorChain;
using kvmkit::virtio::kVirtqAvailFNoInterrupt;
using kvmkit::virtio::kVirtqDescFIndirect;
using kvmkit::virtio::kVirtqDescFNext;
using kvmkit::virtio::kVirtqDescFWrite;
using kvmkit::virtio::kVirtqUsedFNoNotify;
using kvmkit::virtio::QueueConfig;
using kvmkit::virtio::Virtqueue;
using kvmkit::virtio::testing::FakeDriver;
using Buf = FakeDriver::Buf;

namespace {

Virtqueue make(FakeDriver& d) {
    auto q = Virtqueue::create(d.config(), d.mem);
    if (!q) throw std::runtime_error("create: " + q.error().message());
    return std::move(q).value();
}

std::string create_error(FakeDriver& d, const QueueConfig& cfg) {
    auto q = Virtqueue::create(cfg, d.mem);
    return q ? "<ok>" : q.error().message();
}

// The chain pop() returns, or nullopt (with a test failure) if it returned none or an error.
std::optional<DescriptorChain> pop_ok(Virtqueue& q) {
    auto r = q.pop();
    if (!r) {
        ADD_FAILURE() << "pop: nothing available";
        return std::nullopt;
    }
    if (!*r) {
        ADD_FAILURE() << "pop: " << r->error().message();
        return std::nullopt;
    }
    return std::move(*r).value();
}

// The error pop() returns; "<none>" / "<ok>" otherwise.
std::string pop_error(Virtqueue& q) {
    auto r = q.pop();
    if (!r) return "<none>";
    if (*r) return "<ok>";
    return r->error().message();
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// EXPECT that an error message contains `part` (prints both on failure).
#define EXPECT_ERROR_HAS(expr, part) EXPECT_PRED2(contains, expr, part)

}  // namespace

// ---------------------------------------------------------------- create()

TEST(VirtqueueCreate, AcceptsPowersOfTwoUpToMax) {
    for (uint32_t size : {1u, 2u, 4u, 256u, 1024u, 32768u}) {
        FakeDriver d(static_cast<uint16_t>(size));
        auto q = Virtqueue::create(d.config(), d.mem);
        EXPECT_TRUE(q) << size << ": " << (q ? "" : q.error().message());
    }
}

TEST(VirtqueueCreate, RejectsBadSizes) {
    FakeDriver d(256);
    for (uint16_t size : {0, 3, 100, 255, 257, 49152, 65535}) {
        QueueConfig cfg = d.config();
        cfg.size = size;
        EXPECT_ERROR_HAS(create_error(d, cfg), "power of two") << size;
    }
}

TEST(VirtqueueCreate, RejectsMisalignedRings) {
    FakeDriver d(16);
    QueueConfig c = d.config();
    c.desc_table += 8;
    EXPECT_ERROR_HAS(create_error(d, c), "16-byte aligned");
    c = d.config();
    c.avail_ring += 1;
    EXPECT_ERROR_HAS(create_error(d, c), "2-byte aligned");
    c = d.config();
    c.used_ring += 2;
    EXPECT_ERROR_HAS(create_error(d, c), "4-byte aligned");
    // Minimal alignments are enough.
    c = d.config();
    c.avail_ring += 2;
    c.used_ring += 4;
    EXPECT_EQ(create_error(d, c), "<ok>");
}

TEST(VirtqueueCreate, RejectsRingsOutsideMemory) {
    FakeDriver d(16);
    const uint64_t end = FakeDriver::kBase + FakeDriver::kMemSize;
    QueueConfig c = d.config();
    // Descriptor table: 16*16 bytes; one entry past the end of RAM.
    c.desc_table = end - 16 * 15;
    EXPECT_ERROR_HAS(create_error(d, c), "descriptor table");
    c.desc_table = end - 16 * 16;
    EXPECT_EQ(create_error(d, c), "<ok>");
    c.desc_table = 0;  // below RAM
    EXPECT_ERROR_HAS(create_error(d, c), "descriptor table");

    // Available ring: flags idx ring[16] used_event = 38 bytes; used_event
    // alone outside must be rejected even without EVENT_IDX.
    c = d.config();
    c.avail_ring = end - 36;
    EXPECT_ERROR_HAS(create_error(d, c), "available ring");
    c.avail_ring = end - 38;
    EXPECT_EQ(create_error(d, c), "<ok>");

    // Used ring: flags idx ring[16] avail_event = 134 bytes; 4-aligned start.
    c = d.config();
    c.used_ring = end - 132;
    EXPECT_ERROR_HAS(create_error(d, c), "used ring");
    c.used_ring = end - 136;
    EXPECT_EQ(create_error(d, c), "<ok>");
}

TEST(VirtqueueCreate, RejectsRingsThatWrapOrStraddleRegions) {
    FakeDriver d(16);
    QueueConfig c = d.config();
    c.desc_table = 0xffff'ffff'ffff'fff0ull;  // addr + len wraps to a small number
    EXPECT_ERROR_HAS(create_error(d, c), "descriptor table");
    c = d.config();
    c.used_ring = 0xffff'ffff'ffff'fffcull;
    EXPECT_ERROR_HAS(create_error(d, c), "used ring");
    // Across the boundary of two adjacent regions: not one host mapping.
    c = d.config();
    c.desc_table = FakeDriver::kHighBase - 128;
    EXPECT_ERROR_HAS(create_error(d, c), "descriptor table");
}

// ---------------------------------------------------------------- pop(): well-formed chains

TEST(VirtqueuePop, EmptyQueueHasNothing) {
    FakeDriver d(8);
    auto q = make(d);
    EXPECT_FALSE(q.pop().has_value());
    EXPECT_EQ(q.stats().chains, 0u);
}

TEST(VirtqueuePop, ReadableThenWritableChain) {
    FakeDriver d(8);
    auto q = make(d);
    uint64_t hdr = d.alloc(16), data = d.alloc(512), status = d.alloc(1);
    uint16_t head = d.add_chain({{hdr, 16, false}, {data, 512, true}, {status, 1, true}});

    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->head, head);
    ASSERT_EQ(c->readable.size(), 1u);
    EXPECT_EQ(c->readable[0].addr, hdr);
    EXPECT_EQ(c->readable[0].len, 16u);
    EXPECT_FALSE(c->readable[0].device_writable);
    ASSERT_EQ(c->writable.size(), 2u);
    EXPECT_EQ(c->writable[0].addr, data);
    EXPECT_EQ(c->writable[1].addr, status);
    EXPECT_TRUE(c->writable[1].device_writable);
    EXPECT_EQ(c->readable_bytes(), 16u);
    EXPECT_EQ(c->writable_bytes(), 513u);
    EXPECT_FALSE(q.pop().has_value());
    EXPECT_EQ(q.stats().chains, 1u);
    EXPECT_EQ(q.next_avail(), 1);
}

TEST(VirtqueuePop, ChainIsACopy) {
    FakeDriver d(8);
    auto q = make(d);
    uint64_t a = d.alloc(64);
    uint16_t head = d.add_chain({{a, 64, false}});
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    // The driver rewriting the descriptor afterwards changes nothing we hold.
    d.set_desc(head, 0xdead0000, 1, kVirtqDescFWrite, 0);
    EXPECT_EQ(c->readable.at(0).addr, a);
    EXPECT_EQ(c->readable.at(0).len, 64u);
}

TEST(VirtqueuePop, ChainOfExactlyQueueSizeIsAccepted) {
    FakeDriver d(4);
    auto q = make(d);
    std::vector<Buf> bufs;
    for (int i = 0; i < 4; ++i) bufs.push_back({d.alloc(8), 8, i >= 2});
    d.add_chain(bufs);
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->readable.size(), 2u);
    EXPECT_EQ(c->writable.size(), 2u);
}

TEST(VirtqueuePop, ZeroLengthBuffersAreSkippedUnchecked) {
    FakeDriver d(8);
    auto q = make(d);
    uint64_t a = d.alloc(8);
    d.add_chain({{0xffff'ffff'ffff'0000ull, 0, false}, {a, 8, false}, {0x1, 0, true}});
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    ASSERT_EQ(c->readable.size(), 1u);
    EXPECT_EQ(c->readable[0].addr, a);
    EXPECT_TRUE(c->writable.empty());
}

TEST(VirtqueuePop, BufferInSecondRegionIsAccepted) {
    FakeDriver d(8);
    auto q = make(d);
    d.add_chain({{FakeDriver::kHighBase, FakeDriver::kHighSize, true}});
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->writable_bytes(), FakeDriver::kHighSize);
}

TEST(VirtqueuePop, IndicesWrapAround) {
    FakeDriver d(4);
    d.mutable_config().next_avail = 65534;
    d.mutable_config().next_used = 65534;
    d.start_at(65534);
    auto q = make(d);
    for (int round = 0; round < 6; ++round) {
        uint64_t a = d.alloc(8);
        uint16_t head = d.add_chain({{a, 8, true}});
        auto c = pop_ok(q);
        ASSERT_TRUE(c);
        EXPECT_EQ(c->head, head);
        ASSERT_TRUE(q.push_used(c->head, 8));
        uint16_t slot = static_cast<uint16_t>(65534 + round);
        EXPECT_EQ(d.used(slot).id, head);
        EXPECT_EQ(d.used_idx(), static_cast<uint16_t>(slot + 1));
    }
    EXPECT_EQ(q.next_avail(), 4);
    EXPECT_EQ(q.next_used(), 4);
}

TEST(VirtqueuePop, FullRingAcrossWrapIsNotBroken) {
    // avail.idx - next_avail == size exactly, straddling 2^16.
    FakeDriver d(4);
    d.mutable_config().next_avail = 65534;
    d.start_at(65534);
    auto q = make(d);
    for (int i = 0; i < 4; ++i) d.add_chain({{d.alloc(4), 4, false}});
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(pop_ok(q));
    EXPECT_FALSE(q.pop().has_value());
    EXPECT_FALSE(q.broken());
}

// ---------------------------------------------------------------- pop(): avail ring errors

TEST(VirtqueuePop, TooManyAvailableBreaksTheQueue) {
    FakeDriver d(4);
    auto q = make(d);
    for (int i = 0; i < 4; ++i) d.set_desc(static_cast<uint16_t>(i), d.alloc(4), 4, 0, 0);
    d.set_avail_idx(5);  // 5 new entries in a ring of 4
    EXPECT_ERROR_HAS(pop_error(q), "broken");
    EXPECT_TRUE(q.broken());
    EXPECT_FALSE(q.bad_head());
    // From now on every pop fails (no chains, no loop), even once idx looks sane.
    d.set_avail_idx(1);
    EXPECT_ERROR_HAS(pop_error(q), "broken");
    EXPECT_ERROR_HAS(pop_error(q), "broken");
    EXPECT_FALSE(q.enable_notification());
    EXPECT_EQ(q.stats().chains, 0u);
}

TEST(VirtqueuePop, AvailIdxGoingBackwardsBreaksTheQueue) {
    FakeDriver d(8);
    auto q = make(d);
    d.add_chain({{d.alloc(4), 4, false}});
    ASSERT_TRUE(pop_ok(q));
    d.set_avail_idx(0);  // 0 - 1 = 65535 "new" entries
    EXPECT_ERROR_HAS(pop_error(q), "broken");
    EXPECT_TRUE(q.broken());
}

TEST(VirtqueuePop, HeadOutOfRangeRejectsOnlyThatChain) {
    FakeDriver d(8);
    auto q = make(d);
    d.offer(8);
    uint16_t good = d.add_chain({{d.alloc(4), 4, false}});
    EXPECT_ERROR_HAS(pop_error(q), "head 8");
    EXPECT_FALSE(q.bad_head());  // cannot be returned
    EXPECT_FALSE(q.broken());
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->head, good);
    EXPECT_EQ(q.stats().bad_chains, 1u);
    EXPECT_EQ(q.stats().chains, 1u);
}

// ---------------------------------------------------------------- pop(): descriptor errors

TEST(VirtqueuePop, NextOutOfRange) {
    FakeDriver d(8);
    auto q = make(d);
    d.set_desc(2, d.alloc(4), 4, kVirtqDescFNext, 8);
    d.offer(2);
    EXPECT_ERROR_HAS(pop_error(q), "next 8");
    ASSERT_TRUE(q.bad_head());
    EXPECT_EQ(*q.bad_head(), 2);
    EXPECT_FALSE(q.broken());
    // The device returns the bad chain so the driver does not leak it.
    EXPECT_TRUE(q.push_used(2, 0));
    EXPECT_EQ(d.used(0).id, 2u);
    EXPECT_EQ(d.used(0).len, 0u);
    // bad_head is per pop.
    EXPECT_FALSE(q.pop().has_value());
    EXPECT_FALSE(q.bad_head());
}

TEST(VirtqueuePop, LoopIsCaughtByLengthLimit) {
    FakeDriver d(8);
    auto q = make(d);
    uint64_t a = d.alloc(4);
    d.set_desc(0, a, 4, kVirtqDescFNext, 1);
    d.set_desc(1, a, 4, kVirtqDescFNext, 0);
    d.offer(0);
    d.set_desc(5, a, 4, kVirtqDescFNext, 5);  // self-loop
    d.offer(5);
    EXPECT_ERROR_HAS(pop_error(q), "longer than the queue size");
    EXPECT_EQ(q.bad_head(), std::optional<uint16_t>(0));
    EXPECT_ERROR_HAS(pop_error(q), "longer than the queue size");
    EXPECT_EQ(q.bad_head(), std::optional<uint16_t>(5));
}

TEST(VirtqueuePop, BufferOutsideMemory) {
    FakeDriver d(8);
    auto q = make(d);
    const uint64_t end = FakeDriver::kBase + FakeDriver::kMemSize;
    d.add_chain({{end - 8, 16, false}});                     // runs off the end of RAM
    d.add_chain({{0x1000, 1, true}});                        // below RAM
    d.add_chain({{0xffff'ffff'ffff'fff0ull, 0x20, false}});  // addr + len wraps
    d.add_chain({{FakeDriver::kHighBase - 8, 16, true}});    // straddles two regions
    for (int i = 0; i < 4; ++i) EXPECT_ERROR_HAS(pop_error(q), "outside guest memory") << i;
    d.add_chain({{end - 8, 8, false}});
    EXPECT_TRUE(pop_ok(q));
    EXPECT_EQ(q.stats().bad_chains, 4u);
}

TEST(VirtqueuePop, ReadableAfterWritableIsRejected) {
    FakeDriver d(8);
    auto q = make(d);
    d.add_chain({{d.alloc(4), 4, true}, {d.alloc(4), 4, false}});
    EXPECT_ERROR_HAS(pop_error(q), "device-readable buffer after a device-writable");
    // Also when the readable buffer is empty.
    d.add_chain({{d.alloc(4), 4, true}, {d.alloc(4), 0, false}});
    EXPECT_ERROR_HAS(pop_error(q), "device-readable buffer after a device-writable");
}

TEST(VirtqueuePop, ChainOver4GiBIsRejected) {
    // 2.7.5.2: a chain is at most 2^32 bytes (the used length is 32-bit).
    // 2048 descriptors naming all 2 MiB of RAM are exactly 2^32 bytes.
    FakeDriver d(4096);
    auto q = make(d);
    std::vector<Buf> bufs(2048, Buf{FakeDriver::kBase, static_cast<uint32_t>(FakeDriver::kMemSize), false});
    d.add_chain(bufs);
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->readable_bytes(), uint64_t{1} << 32);
    bufs.push_back(bufs.back());
    d.add_chain(bufs);
    EXPECT_ERROR_HAS(pop_error(q), "longer than 2^32 bytes");
}

// ---------------------------------------------------------------- indirect descriptors

TEST(VirtqueueIndirect, TableIsFollowed) {
    FakeDriver d(8, false, true);
    auto q = make(d);
    uint64_t a = d.alloc(32), b = d.alloc(64), s = d.alloc(1);
    uint16_t head = d.add_indirect_chain({{a, 32, false}, {b, 64, true}, {s, 1, true}});
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->head, head);
    ASSERT_EQ(c->readable.size(), 1u);
    ASSERT_EQ(c->writable.size(), 2u);
    EXPECT_EQ(c->readable[0].addr, a);
    EXPECT_EQ(c->writable[0].addr, b);
    EXPECT_EQ(c->writable[1].addr, s);
}

TEST(VirtqueueIndirect, TableMayHoldMoreEntriesThanTheQueue) {
    FakeDriver d(2, false, true);
    auto q = make(d);
    std::vector<Buf> bufs;
    for (int i = 0; i < 40; ++i) bufs.push_back({d.alloc(8), 8, false});
    d.add_indirect_chain(bufs);
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->readable.size(), 40u);
}

TEST(VirtqueueIndirect, DirectDescriptorsThenIndirect) {
    // 2.7.5.3.2: zero or more direct descriptors, then one indirect.
    FakeDriver d(8, false, true);
    auto q = make(d);
    uint64_t hdr = d.alloc(16), a = d.alloc(8), b = d.alloc(8);
    uint64_t table = d.write_indirect_table({{a, 8, false}, {b, 8, true}});
    d.set_desc(3, hdr, 16, kVirtqDescFNext, 6);
    d.set_desc(6, table, 32, kVirtqDescFIndirect | kVirtqDescFWrite, 0);  // WRITE on it is ignored
    d.offer(3);
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    ASSERT_EQ(c->readable.size(), 2u);
    EXPECT_EQ(c->readable[0].addr, hdr);
    EXPECT_EQ(c->readable[1].addr, a);
    ASSERT_EQ(c->writable.size(), 1u);
    EXPECT_EQ(c->writable[0].addr, b);
}

TEST(VirtqueueIndirect, DirectionOrderSpansTheTable) {
    FakeDriver d(8, false, true);
    auto q = make(d);
    uint64_t table = d.write_indirect_table({{d.alloc(8), 8, false}});
    d.set_desc(0, d.alloc(8), 8, kVirtqDescFNext | kVirtqDescFWrite, 1);
    d.set_desc(1, table, 16, kVirtqDescFIndirect, 0);
    d.offer(0);
    EXPECT_ERROR_HAS(pop_error(q), "device-readable buffer after a device-writable");
    // Within a table too.
    d.add_indirect_chain({{d.alloc(8), 8, true}, {d.alloc(8), 8, false}});
    EXPECT_ERROR_HAS(pop_error(q), "device-readable buffer after a device-writable");
}

TEST(VirtqueueIndirect, RejectedUnlessNegotiated) {
    FakeDriver d(8, false, /*indirect=*/false);
    auto q = make(d);
    d.add_indirect_chain({{d.alloc(8), 8, false}});
    EXPECT_ERROR_HAS(pop_error(q), "not negotiated");
    EXPECT_TRUE(q.bad_head());
}

TEST(VirtqueueIndirect, IndirectWithNextIsRejected) {
    FakeDriver d(8, false, true);
    auto q = make(d);
    uint64_t table = d.write_indirect_table({{d.alloc(8), 8, false}});
    d.set_desc(0, table, 16, kVirtqDescFIndirect | kVirtqDescFNext, 1);
    d.set_desc(1, d.alloc(8), 8, 0, 0);
    d.offer(0);
    EXPECT_ERROR_HAS(pop_error(q), "both INDIRECT and NEXT");
}

TEST(VirtqueueIndirect, NestedIndirectIsRejected) {
    FakeDriver d(8, false, true);
    auto q = make(d);
    uint64_t inner = d.write_indirect_table({{d.alloc(8), 8, false}});
    uint64_t outer = d.alloc(16);
    d.write_desc(outer, inner, 16, kVirtqDescFIndirect, 0);
    d.set_desc(0, outer, 16, kVirtqDescFIndirect, 0);
    d.offer(0);
    EXPECT_ERROR_HAS(pop_error(q), "nested INDIRECT");
}

TEST(VirtqueueIndirect, TableLengthMustBeNonZeroMultipleOf16) {
    FakeDriver d(8, false, true);
    auto q = make(d);
    uint64_t table = d.write_indirect_table({{d.alloc(8), 8, false}, {d.alloc(8), 8, false}});
    for (uint32_t len : {0u, 8u, 17u, 31u}) {
        d.set_desc(0, table, len, kVirtqDescFIndirect, 0);
        d.offer(0);
        EXPECT_ERROR_HAS(pop_error(q), "multiple of 16") << len;
    }
    // Too large (more than kMaxIndirectEntries entries).
    d.set_desc(0, table, (Virtqueue::kMaxIndirectEntries + 1) * 16, kVirtqDescFIndirect, 0);
    d.offer(0);
    EXPECT_ERROR_HAS(pop_error(q), "indirect table of");
}

TEST(VirtqueueIndirect, TableOutsideMemory) {
    FakeDriver d(8, false, true);
    auto q = make(d);
    const uint64_t end = FakeDriver::kBase + FakeDriver::kMemSize;
    d.set_desc(0, end - 16, 32, kVirtqDescFIndirect, 0);
    d.offer(0);
    EXPECT_ERROR_HAS(pop_error(q), "indirect table");
    d.set_desc(1, 0xffff'ffff'ffff'fff0ull, 32, kVirtqDescFIndirect, 0);
    d.offer(1);
    EXPECT_ERROR_HAS(pop_error(q), "outside guest memory");
}

TEST(VirtqueueIndirect, NextOutsideTableAndLoops) {
    FakeDriver d(8, false, true);
    auto q = make(d);
    uint64_t a = d.alloc(8);
    uint64_t table = d.alloc(32);
    d.write_desc(table, a, 8, kVirtqDescFNext, 2);  // the table has 2 entries: next 2 is outside
    d.write_desc(table + 16, a, 8, 0, 0);
    d.set_desc(0, table, 32, kVirtqDescFIndirect, 0);
    d.offer(0);
    EXPECT_ERROR_HAS(pop_error(q), "outside the table");

    uint64_t loop = d.alloc(32);
    d.write_desc(loop, a, 8, kVirtqDescFNext, 1);
    d.write_desc(loop + 16, a, 8, kVirtqDescFNext, 0);
    d.set_desc(1, loop, 32, kVirtqDescFIndirect, 0);
    d.offer(1);
    EXPECT_ERROR_HAS(pop_error(q), "indirect chain longer than its table");
}

TEST(VirtqueueIndirect, BufferInTableOutsideMemory) {
    FakeDriver d(8, false, true);
    auto q = make(d);
    d.add_indirect_chain({{d.alloc(8), 8, false}, {0x10, 8, true}});
    EXPECT_ERROR_HAS(pop_error(q), "indirect descriptor 1: buffer");
}

// ---------------------------------------------------------------- push_used()

TEST(VirtqueueUsed, PushWritesElementThenIdx) {
    FakeDriver d(8);
    auto q = make(d);
    uint16_t h0 = d.add_chain({{d.alloc(8), 8, true}});
    uint16_t h1 = d.add_chain({{d.alloc(8), 8, false}, {d.alloc(100), 100, true}});
    auto c0 = pop_ok(q);
    auto c1 = pop_ok(q);
    ASSERT_TRUE(c0 && c1);
    EXPECT_EQ(q.in_flight(), 2u);
    // Complete out of order.
    ASSERT_TRUE(q.push_used(c1->head, 100));
    EXPECT_EQ(d.used_idx(), 1);
    ASSERT_TRUE(q.push_used(c0->head, 8));
    EXPECT_EQ(d.used_idx(), 2);
    EXPECT_EQ(d.used(0).id, h1);
    EXPECT_EQ(d.used(0).len, 100u);
    EXPECT_EQ(d.used(1).id, h0);
    EXPECT_EQ(d.used(1).len, 8u);
    EXPECT_EQ(q.stats().used, 2u);
    EXPECT_EQ(q.in_flight(), 0u);
}

TEST(VirtqueueUsed, RejectsHeadOutOfRange) {
    FakeDriver d(8);
    auto q = make(d);
    d.add_chain({{d.alloc(8), 8, true}});
    ASSERT_TRUE(pop_ok(q));
    EXPECT_FALSE(q.push_used(8, 0));
    EXPECT_EQ(d.used_idx(), 0);
}

TEST(VirtqueueUsed, RejectsMoreUsedThanPopped) {
    FakeDriver d(8);
    auto q = make(d);
    EXPECT_FALSE(q.push_used(0, 0));
    d.add_chain({{d.alloc(8), 8, true}});
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    EXPECT_TRUE(q.push_used(c->head, 0));
    EXPECT_FALSE(q.push_used(c->head, 0));
    EXPECT_EQ(d.used_idx(), 1);
}

TEST(VirtqueueUsed, DeviceNeverWritesOutsideTheUsedElementAndIdx) {
    FakeDriver d(4);
    auto q = make(d);
    // Poison the used ring's flags and avail_event; a push must leave them.
    d.put<uint16_t>(d.config().used_ring, 0);
    d.set_avail_event(0x5a5a);
    d.add_chain({{d.alloc(8), 8, true}});
    auto c = pop_ok(q);
    ASSERT_TRUE(c);
    ASSERT_TRUE(q.push_used(c->head, 3));
    EXPECT_EQ(d.avail_event(), 0x5a5a);
    EXPECT_EQ(d.used_flags(), 0);
}

// ---------------------------------------------------------------- notifications

TEST(VirtqueueNotify, WithoutEventIdxFollowsNoInterruptFlag) {
    FakeDriver d(8);
    auto q = make(d);
    for (int i = 0; i < 3; ++i) d.add_chain({{d.alloc(8), 8, true}});
    EXPECT_FALSE(q.should_notify());  // nothing pushed yet

    auto c = pop_ok(q);
    ASSERT_TRUE(c && q.push_used(c->head, 8));
    EXPECT_TRUE(q.should_notify());

    d.set_avail_flags(kVirtqAvailFNoInterrupt);
    c = pop_ok(q);
    ASSERT_TRUE(c && q.push_used(c->head, 8));
    EXPECT_FALSE(q.should_notify());

    // used_event is ignored without EVENT_IDX.
    d.set_avail_flags(0);
    d.set_used_event(1000);
    c = pop_ok(q);
    ASSERT_TRUE(c && q.push_used(c->head, 8));
    EXPECT_TRUE(q.should_notify());
    EXPECT_EQ(q.stats().notifications, 2u);
    EXPECT_EQ(q.stats().suppressed, 1u);
}

TEST(VirtqueueNotify, EventIdxNotifiesWhenCrossingUsedEvent) {
    FakeDriver d(16, /*event_idx=*/true);
    auto q = make(d);
    auto complete = [&](int n) {
        for (int i = 0; i < n; ++i) {
            d.add_chain({{d.alloc(8), 8, true}});
            auto c = pop_ok(q);
            ASSERT_TRUE(c && q.push_used(c->head, 8));
        }
    };
    // NO_INTERRUPT is ignored with EVENT_IDX.
    d.set_avail_flags(kVirtqAvailFNoInterrupt);
    d.set_used_event(0);  // wants an interrupt once entry 0 is used
    complete(1);          // used.idx 0 -> 1
    EXPECT_TRUE(q.should_notify());
    complete(1);  // 1 -> 2: used_event 0 not crossed again
    EXPECT_FALSE(q.should_notify());

    d.set_used_event(4);
    complete(2);  // 2 -> 4: entry 4 not yet used
    EXPECT_FALSE(q.should_notify());
    complete(3);  // 4 -> 7: crosses 4 in the batch
    EXPECT_TRUE(q.should_notify());

    d.set_used_event(7);
    complete(1);  // 7 -> 8: exactly entry 7
    EXPECT_TRUE(q.should_notify());
    EXPECT_FALSE(q.should_notify());  // nothing new
}

TEST(VirtqueueNotify, EventIdxAcrossWrap) {
    FakeDriver d(4, true);
    d.mutable_config().next_avail = 65535;
    d.mutable_config().next_used = 65535;
    d.start_at(65535);
    auto q = make(d);
    d.set_used_event(65535);
    for (int i = 0; i < 2; ++i) {
        d.add_chain({{d.alloc(8), 8, true}});
        auto c = pop_ok(q);
        ASSERT_TRUE(c && q.push_used(c->head, 8));
    }
    EXPECT_TRUE(q.should_notify());  // 65535 -> 1 crosses 65535
    d.set_used_event(0);
    d.add_chain({{d.alloc(8), 8, true}});
    auto c = pop_ok(q);
    ASSERT_TRUE(c && q.push_used(c->head, 8));
    EXPECT_FALSE(q.should_notify());  // 1 -> 2, used_event 0 already behind
}

TEST(VirtqueueNotify, EnableWithoutEventIdxClearsNoNotify) {
    FakeDriver d(8);
    auto q = make(d);
    q.disable_notification();
    EXPECT_EQ(d.used_flags(), kVirtqUsedFNoNotify);
    EXPECT_FALSE(q.enable_notification());
    EXPECT_EQ(d.used_flags(), 0);
    // Buffers posted while disabled are reported.
    q.disable_notification();
    d.add_chain({{d.alloc(8), 8, false}});
    EXPECT_TRUE(q.enable_notification());
    EXPECT_EQ(d.used_flags(), 0);
    ASSERT_TRUE(pop_ok(q));
    EXPECT_FALSE(q.enable_notification());
}

TEST(VirtqueueNotify, EnableWithEventIdxWritesAvailEvent) {
    FakeDriver d(8, true);
    auto q = make(d);
    d.set_avail_event(0x7777);
    for (int i = 0; i < 3; ++i) d.add_chain({{d.alloc(8), 8, false}});
    q.disable_notification();
    EXPECT_EQ(d.used_flags(), 0);  // flags stay 0 with EVENT_IDX
    ASSERT_TRUE(pop_ok(q));
    ASSERT_TRUE(pop_ok(q));
    EXPECT_EQ(d.avail_event(), 0x7777);    // disabled: not advanced
    EXPECT_TRUE(q.enable_notification());  // one more is there
    EXPECT_EQ(d.avail_event(), 2);
    ASSERT_TRUE(pop_ok(q));
    EXPECT_FALSE(q.enable_notification());
    EXPECT_EQ(d.avail_event(), 3);
}

TEST(VirtqueueNotify, PopOnEmptyPublishesAvailEvent) {
    FakeDriver d(8, true);
    auto q = make(d);
    d.set_avail_event(0x7777);
    d.add_chain({{d.alloc(8), 8, false}});
    d.add_chain({{d.alloc(8), 8, false}});
    ASSERT_TRUE(pop_ok(q));
    ASSERT_TRUE(pop_ok(q));
    EXPECT_FALSE(q.pop().has_value());
    EXPECT_EQ(d.avail_event(), 2);  // the driver will notify when it adds entry 2
}

TEST(VirtqueueNotify, PopOnEmptyLeavesAvailEventWhileDisabled) {
    FakeDriver d(8, true);
    auto q = make(d);
    d.set_avail_event(0x7777);
    d.add_chain({{d.alloc(8), 8, false}});
    q.disable_notification();
    ASSERT_TRUE(pop_ok(q));
    EXPECT_FALSE(q.pop().has_value());
    EXPECT_EQ(d.avail_event(), 0x7777);  // the device is polling: no notifications wanted
    EXPECT_FALSE(q.enable_notification());
    EXPECT_EQ(d.avail_event(), 1);
}
