// Bus: ordered, overlap-checked ranges; devices see offsets relative to their base.
#include "bus/bus.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

using kvmkit::bus::Bus;
using kvmkit::bus::BusDevice;
using kvmkit::bus::BusRange;

namespace {

struct Access {
    bool write;
    uint64_t offset;
    std::vector<uint8_t> bytes;
};

// Records every access; reads return (tag + offset + i) so a test can tell devices apart.
class RecordingDevice : public BusDevice {
public:
    RecordingDevice(std::string name, uint8_t tag) : name_(std::move(name)), tag_(tag) {}
    const char* name() const override { return name_.c_str(); }
    void read(uint64_t offset, std::span<uint8_t> data) override {
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(tag_ + offset + i);
        log.push_back({false, offset, std::vector<uint8_t>(data.begin(), data.end())});
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        log.push_back({true, offset, std::vector<uint8_t>(data.begin(), data.end())});
    }
    std::vector<Access> log;

private:
    std::string name_;
    uint8_t tag_;
};

std::shared_ptr<RecordingDevice> dev(const char* name, uint8_t tag = 0) {
    return std::make_shared<RecordingDevice>(name, tag);
}

}  // namespace

TEST(Bus, InsertOutOfOrderAndFindEach) {
    Bus bus("pio");
    auto c = dev("c"), a = dev("a"), b = dev("b");
    ASSERT_TRUE(bus.insert({0x3f8, 8}, c));
    ASSERT_TRUE(bus.insert({0x60, 5}, a));
    ASSERT_TRUE(bus.insert({0x70, 2}, b));

    EXPECT_EQ(bus.find(0x60).device, a);
    EXPECT_EQ(bus.find(0x64).device, a);
    EXPECT_EQ(bus.find(0x65).device, nullptr);
    EXPECT_EQ(bus.find(0x70).device, b);
    EXPECT_EQ(bus.find(0x71).device, b);
    EXPECT_EQ(bus.find(0x72).device, nullptr);
    EXPECT_EQ(bus.find(0x3f7).device, nullptr);
    EXPECT_EQ(bus.find(0x3f8).device, c);
    EXPECT_EQ(bus.find(0x3ff).device, c);
    EXPECT_EQ(bus.find(0x400).device, nullptr);
    EXPECT_EQ(bus.find(0).device, nullptr);

    auto e = bus.find(0x3fc);
    EXPECT_EQ(e.range.base, 0x3f8u);
    EXPECT_EQ(e.range.size, 8u);
}

TEST(Bus, OverlapsAreRejectedAdjacentRangesAccepted) {
    Bus bus("mmio");
    ASSERT_TRUE(bus.insert({0x100, 0x10}, dev("existing")));  // [0x100, 0x10f]

    struct Case {
        BusRange r;
        const char* what;
    } rejected[] = {
        {{0x100, 0x10}, "identical"},
        {{0x0f0, 0x11}, "overlaps the first byte"},
        {{0x10f, 0x01}, "overlaps the last byte"},
        {{0x108, 0x10}, "overlaps the end"},
        {{0x0f8, 0x10}, "overlaps the start"},
        {{0x0f0, 0x40}, "contains it"},
        {{0x104, 0x04}, "inside it"},
    };
    for (const auto& c : rejected) {
        auto r = bus.insert(c.r, dev("new"));
        EXPECT_FALSE(r) << c.what;
        if (!r) {
            EXPECT_NE(r.error().message().find("overlaps"), std::string::npos) << r.error().message();
            EXPECT_NE(r.error().message().find("existing"), std::string::npos) << r.error().message();
        }
    }
    EXPECT_TRUE(bus.insert({0x0f0, 0x10}, dev("below")));  // ends at 0xff
    EXPECT_TRUE(bus.insert({0x110, 0x10}, dev("above")));  // starts at 0x110
    EXPECT_STREQ(bus.find(0xff).device->name(), "below");
    EXPECT_STREQ(bus.find(0x100).device->name(), "existing");
    EXPECT_STREQ(bus.find(0x10f).device->name(), "existing");
    EXPECT_STREQ(bus.find(0x110).device->name(), "above");
}

TEST(Bus, OverlapWithANonNeighbourIsRejected) {
    // The new range starts between two ranges and reaches into the second one, or
    // starts inside the first: both neighbours must be checked.
    Bus bus("mmio");
    ASSERT_TRUE(bus.insert({0x1000, 0x100}, dev("lo")));
    ASSERT_TRUE(bus.insert({0x2000, 0x100}, dev("hi")));
    EXPECT_FALSE(bus.insert({0x1800, 0x900}, dev("x")));   // gap into hi
    EXPECT_FALSE(bus.insert({0x10ff, 0x10}, dev("x")));    // inside lo into the gap
    EXPECT_FALSE(bus.insert({0x0, 0x10000}, dev("x")));    // covers both
    EXPECT_TRUE(bus.insert({0x1100, 0xf00}, dev("gap")));  // exactly the gap
}

TEST(Bus, EmptyAndWrappingRangesAreRejected) {
    Bus bus("pio");
    auto e = bus.insert({0x80, 0}, dev("empty"));
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message().find("empty"), std::string::npos) << e.error().message();

    auto w = bus.insert({UINT64_MAX - 3, 8}, dev("wrap"));
    ASSERT_FALSE(w);
    EXPECT_NE(w.error().message().find("wraps"), std::string::npos) << w.error().message();
    EXPECT_EQ(bus.find(UINT64_MAX).device, nullptr);
    EXPECT_EQ(bus.find(2).device, nullptr);

    // The very last address is a valid one-byte range (last() == UINT64_MAX, no wrap).
    auto top = dev("top");
    ASSERT_TRUE(bus.insert({UINT64_MAX, 1}, top));
    EXPECT_EQ(bus.find(UINT64_MAX).device, top);
    ASSERT_TRUE(bus.insert({UINT64_MAX - 4, 4}, dev("below-top")));
    EXPECT_FALSE(bus.insert({UINT64_MAX - 1, 2}, dev("x")));
}

TEST(Bus, DispatchPassesOffsetsRelativeToTheBase) {
    Bus bus("pio");
    auto serial = dev("serial", 0x40);
    ASSERT_TRUE(bus.insert({0x3f8, 8}, serial));

    const uint8_t out[] = {0x83};
    ASSERT_TRUE(bus.write(0x3fb, out));
    ASSERT_EQ(serial->log.size(), 1u);
    EXPECT_TRUE(serial->log[0].write);
    EXPECT_EQ(serial->log[0].offset, 3u);
    EXPECT_EQ(serial->log[0].bytes, std::vector<uint8_t>{0x83});

    uint8_t in[2] = {};
    ASSERT_TRUE(bus.read(0x3fd, in));
    ASSERT_EQ(serial->log.size(), 2u);
    EXPECT_FALSE(serial->log[1].write);
    EXPECT_EQ(serial->log[1].offset, 5u);
    EXPECT_EQ(serial->log[1].bytes.size(), 2u);
    EXPECT_EQ(in[0], 0x45);  // tag 0x40 + offset 5
    EXPECT_EQ(in[1], 0x46);

    uint8_t base_byte = 0;
    ASSERT_TRUE(bus.read(0x3f8, {&base_byte, 1}));
    EXPECT_EQ(serial->log.back().offset, 0u);
    EXPECT_EQ(base_byte, 0x40);
}

TEST(Bus, DispatchSelectsTheRightDevice) {
    Bus bus("mmio");
    auto lo = dev("lo", 0x10), hi = dev("hi", 0x80);
    ASSERT_TRUE(bus.insert({0xd0000000, 0x1000}, lo));
    ASSERT_TRUE(bus.insert({0xd0001000, 0x1000}, hi));
    uint8_t b[4] = {};
    ASSERT_TRUE(bus.read(0xd0001004, b));
    EXPECT_TRUE(lo->log.empty());
    ASSERT_EQ(hi->log.size(), 1u);
    EXPECT_EQ(hi->log[0].offset, 4u);
    EXPECT_EQ(b[0], 0x84);
    ASSERT_TRUE(bus.read(0xd0000fff, {b, 1}));
    ASSERT_EQ(lo->log.size(), 1u);
    EXPECT_EQ(lo->log[0].offset, 0xfffu);
}

TEST(Bus, UnclaimedAccessesReturnFalseAndLeaveDataAlone) {
    Bus bus("pio");
    auto d = dev("d");
    ASSERT_TRUE(bus.insert({0x60, 5}, d));
    uint8_t data[2] = {0x12, 0x34};
    EXPECT_FALSE(bus.read(0x65, data));
    EXPECT_EQ(data[0], 0x12);
    EXPECT_EQ(data[1], 0x34);
    EXPECT_FALSE(bus.write(0x5f, data));
    EXPECT_FALSE(Bus("empty").read(0, data));
    EXPECT_TRUE(d->log.empty());
}

TEST(Bus, RemoveFreesTheRange) {
    Bus bus("pio");
    auto a = dev("a"), b = dev("b");
    ASSERT_TRUE(bus.insert({0x70, 2}, a));
    ASSERT_TRUE(bus.insert({0x80, 1}, b));

    EXPECT_FALSE(bus.remove(0x71));  // not a base
    EXPECT_FALSE(bus.remove(0x90));
    EXPECT_EQ(bus.find(0x70).device, a);

    ASSERT_TRUE(bus.remove(0x70));
    uint8_t byte = 0;
    EXPECT_FALSE(bus.read(0x70, {&byte, 1}));
    EXPECT_FALSE(bus.read(0x71, {&byte, 1}));
    EXPECT_EQ(bus.find(0x80).device, b);  // the other range is untouched
    EXPECT_FALSE(bus.remove(0x70));       // already gone

    // The freed range can be claimed again, also by a differently-sized range.
    auto c = dev("c");
    ASSERT_TRUE(bus.insert({0x6f, 4}, c));
    EXPECT_EQ(bus.find(0x72).device, c);
}

TEST(BusRange, ContainsAndOverlaps) {
    BusRange r{0x10, 0x10};
    EXPECT_EQ(r.last(), 0x1fu);
    EXPECT_FALSE(r.contains(0x0f));
    EXPECT_TRUE(r.contains(0x10));
    EXPECT_TRUE(r.contains(0x1f));
    EXPECT_FALSE(r.contains(0x20));
    EXPECT_TRUE(r.overlaps({0x1f, 1}));
    EXPECT_FALSE(r.overlaps({0x20, 1}));
    EXPECT_FALSE(r.overlaps({0x0, 0x10}));
    EXPECT_TRUE(r.overlaps({0x0, 0x11}));
    BusRange top{UINT64_MAX, 1};
    EXPECT_TRUE(top.contains(UINT64_MAX));
    EXPECT_FALSE(top.contains(0));
}

// An access that starts in a range and runs past its end: the device sees only the bytes
// inside its range (never an offset >= its size); the rest is unclaimed, as when the
// chipset splits the cycle into bytes and nothing decodes the ones beyond.
TEST(Bus, AccessRunningPastTheRangeEndIsCutAtTheEnd) {
    Bus bus("pio");
    auto serial = dev("serial", 0x40);
    auto next = dev("next", 0x80);
    ASSERT_TRUE(bus.insert({0x3f8, 8}, serial));
    ASSERT_TRUE(bus.insert({0x400, 4}, next));  // adjacent: still not reached

    uint8_t in[2] = {0x12, 0x34};
    ASSERT_TRUE(bus.read(0x3ff, in));
    ASSERT_EQ(serial->log.size(), 1u);
    EXPECT_EQ(serial->log[0].offset, 7u);
    EXPECT_EQ(serial->log[0].bytes.size(), 1u);
    EXPECT_EQ(in[0], 0x47);  // tag 0x40 + offset 7
    EXPECT_EQ(in[1], 0xff);  // beyond the range: nothing there

    uint8_t in4[4] = {};
    ASSERT_TRUE(bus.read(0x3fe, in4));
    EXPECT_EQ(serial->log.back().offset, 6u);
    EXPECT_EQ(serial->log.back().bytes.size(), 2u);
    EXPECT_EQ(in4[0], 0x46);
    EXPECT_EQ(in4[1], 0x47);
    EXPECT_EQ(in4[2], 0xff);
    EXPECT_EQ(in4[3], 0xff);

    const uint8_t out[4] = {1, 2, 3, 4};
    ASSERT_TRUE(bus.write(0x3fd, out));
    EXPECT_TRUE(serial->log.back().write);
    EXPECT_EQ(serial->log.back().offset, 5u);
    EXPECT_EQ(serial->log.back().bytes, (std::vector<uint8_t>{1, 2, 3}));
    EXPECT_TRUE(next->log.empty()) << "one access never reaches two devices";

    // Accesses that fit are untouched.
    uint8_t whole[8] = {};
    ASSERT_TRUE(bus.read(0x3f8, whole));
    EXPECT_EQ(serial->log.back().bytes.size(), 8u);
    EXPECT_EQ(whole[7], 0x47);

    // At the very top of the address space the cut needs no end address (which would wrap).
    auto top = dev("top", 0x10);
    ASSERT_TRUE(bus.insert({UINT64_MAX, 1}, top));
    uint8_t t[4] = {};
    ASSERT_TRUE(bus.read(UINT64_MAX, t));
    EXPECT_EQ(top->log.back().bytes.size(), 1u);
    EXPECT_EQ(t[0], 0x10);
    EXPECT_EQ(t[3], 0xff);
}
