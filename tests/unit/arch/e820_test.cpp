// The e820 map and RAM ranges of the PC layout: conventional memory below the
// EBDA, the EBDA and BIOS area reserved, RAM from 1 MiB to the 3 GiB MMIO hole,
// and the rest of RAM from 4 GiB.
#include "arch/x86_64/e820.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <string>

using namespace kvmkit::arch::x86_64;

namespace kvmkit::arch::x86_64 {
void PrintTo(const E820Entry& e, std::ostream* os) {
    *os << std::hex << "{0x" << e.addr << ", 0x" << e.size << ", type " << static_cast<uint32_t>(e.type) << "}";
}
}  // namespace kvmkit::arch::x86_64

namespace {
constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;
constexpr uint64_t kEbda = 0x9fc00;      // 639 KiB: conventional memory ends, EBDA begins
constexpr uint64_t kVgaHole = 0xa0000;   // 640 KiB
constexpr uint64_t kBiosArea = 0xe0000;  // extended BIOS area (ACPI tables) up to 1 MiB

uint64_t ram_in_e820(const std::vector<E820Entry>& map) {
    uint64_t t = 0;
    for (const auto& e : map)
        if (e.type == E820Type::Ram) t += e.size;
    return t;
}

void check_well_formed(uint64_t mem) {
    SCOPED_TRACE("mem = 0x" + [&] {
        char b[32];
        snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(mem));
        return std::string(b);
    }());
    auto map = build_e820(mem);
    ASSERT_FALSE(map.empty());
    for (size_t i = 0; i < map.size(); ++i) {
        EXPECT_GT(map[i].size, 0u) << i;
        if (i) {
            EXPECT_GE(map[i].addr, map[i - 1].addr + map[i - 1].size) << "entries " << i - 1 << "/" << i;
        }
        if (map[i].type != E820Type::Ram) continue;
        const uint64_t s = map[i].addr, e = map[i].addr + map[i].size;
        // No RAM in the legacy hole, the BIOS area or the 32-bit MMIO hole.
        EXPECT_TRUE(e <= kEbda || s >= 1 * MiB) << i;
        EXPECT_TRUE(e <= 3 * GiB || s >= 4 * GiB) << i;
        // Every RAM entry is backed by one of the RAM ranges.
        bool backed = false;
        for (const auto& r : ram_ranges(mem)) backed |= s >= r.base && e <= r.base + r.size;
        EXPECT_TRUE(backed) << i;
    }
    // The only RAM the map withholds is [EBDA, 1 MiB): all other memory is usable.
    EXPECT_EQ(ram_in_e820(map), mem - (1 * MiB - kEbda));
    // The EBDA and the BIOS area are reported reserved.
    EXPECT_NE(std::find(map.begin(), map.end(), E820Entry{kEbda, kVgaHole - kEbda, E820Type::Reserved}), map.end());
    EXPECT_NE(std::find(map.begin(), map.end(), E820Entry{kBiosArea, 1 * MiB - kBiosArea, E820Type::Reserved}),
              map.end());
}
}  // namespace

// RAM entries only: reserved entries (EBDA, BIOS, and any the firmware adds inside the
// MMIO hole) are checked separately, so that new reservations do not hide RAM changes.
std::vector<E820Entry> ram_entries(uint64_t mem) {
    std::vector<E820Entry> v;
    for (const auto& e : build_e820(mem))
        if (e.type == E820Type::Ram) v.push_back(e);
    return v;
}

TEST(E820, Map512M) {
    const std::vector<E820Entry> want = {
        {0, 0x9fc00, E820Type::Ram},
        {0x100000, 512 * MiB - 0x100000, E820Type::Ram},
    };
    EXPECT_EQ(ram_entries(512 * MiB), want);
    auto map = build_e820(512 * MiB);
    ASSERT_GE(map.size(), 4u);
    // Conventional memory, the EBDA, the BIOS area and extended memory, in this order, first.
    EXPECT_EQ(map[0], (E820Entry{0, 0x9fc00, E820Type::Ram}));
    EXPECT_EQ(map[1], (E820Entry{0x9fc00, 0x400, E820Type::Reserved}));
    EXPECT_EQ(map[2], (E820Entry{0xe0000, 0x20000, E820Type::Reserved}));
    EXPECT_EQ(map[3], (E820Entry{0x100000, 512 * MiB - 0x100000, E820Type::Ram}));
    // Anything after that is a reservation inside the 32-bit MMIO hole.
    for (size_t i = 4; i < map.size(); ++i) {
        EXPECT_EQ(map[i].type, E820Type::Reserved) << i;
        EXPECT_GE(map[i].addr, 3 * GiB) << i;
        EXPECT_LE(map[i].addr + map[i].size, 4 * GiB) << i;
    }
}

TEST(E820, MapExactly3G) {
    // Everything fits below the hole: no RAM at or above 4 GiB.
    const std::vector<E820Entry> want = {
        {0, 0x9fc00, E820Type::Ram},
        {0x100000, 0xc0000000 - 0x100000, E820Type::Ram},
    };
    EXPECT_EQ(ram_entries(3 * GiB), want);
    for (const auto& e : build_e820(3 * GiB)) EXPECT_LE(e.addr + e.size, 4 * GiB);
}

TEST(E820, Map5GSplitsAroundTheMmioHole) {
    const std::vector<E820Entry> want = {
        {0, 0x9fc00, E820Type::Ram},
        {0x100000, 0xc0000000 - 0x100000, E820Type::Ram},
        {0x100000000, 2 * GiB, E820Type::Ram},  // 5 GiB - 3 GiB below the hole
    };
    EXPECT_EQ(ram_entries(5 * GiB), want);
    auto map = build_e820(5 * GiB);
    EXPECT_EQ(map.back(), want.back()) << "RAM above 4 GiB is the highest entry";
}

TEST(E820, OnePageAbove3GGoesTo4G) {
    auto map = build_e820(3 * GiB + 4096);
    ASSERT_FALSE(map.empty());
    EXPECT_EQ(map.back(), (E820Entry{4 * GiB, 4096, E820Type::Ram}));
}

TEST(E820, WellFormedForManySizes) {
    for (uint64_t mem : {8 * MiB, 64 * MiB, 512 * MiB, 1 * GiB, 3 * GiB - 4096, 3 * GiB, 3 * GiB + 2 * MiB, 4 * GiB,
                         5 * GiB, 64 * GiB})
        check_well_formed(mem);
}

TEST(RamRanges, BelowAndAboveTheHole) {
    auto small = ram_ranges(512 * MiB);
    ASSERT_EQ(small.size(), 1u);
    EXPECT_EQ(small[0].base, 0u);
    EXPECT_EQ(small[0].size, 512 * MiB);

    auto exact = ram_ranges(3 * GiB);
    ASSERT_EQ(exact.size(), 1u);
    EXPECT_EQ(exact[0].size, 3 * GiB);

    auto big = ram_ranges(5 * GiB);
    ASSERT_EQ(big.size(), 2u);
    EXPECT_EQ(big[0].base, 0u);
    EXPECT_EQ(big[0].size, 3 * GiB);
    EXPECT_EQ(big[1].base, 4 * GiB);
    EXPECT_EQ(big[1].size, 2 * GiB);
}

TEST(RamRanges, LowRamEnd) {
    EXPECT_EQ(low_ram_end(512 * MiB), 512 * MiB);
    EXPECT_EQ(low_ram_end(3 * GiB), 3 * GiB);
    EXPECT_EQ(low_ram_end(5 * GiB), 3 * GiB);
}
