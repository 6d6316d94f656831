#include "arch/x86_64/aml.hpp"

#include <gtest/gtest.h>

using namespace kvmkit::arch::x86_64;
using Bytes = aml::Bytes;

TEST(Aml, PkgLengthEncodings) {
    // ACPI 20.2.4: one byte up to 63, then a lead byte with the count of following bytes.
    EXPECT_EQ(aml::pkg_length(10), (Bytes{11}));
    EXPECT_EQ(aml::pkg_length(62), (Bytes{63}));
    // 63 body bytes + 2 length bytes = 65 = 0x41: lead 0x40 | 0x1, then 0x41 >> 4 = 0x04.
    EXPECT_EQ(aml::pkg_length(63), (Bytes{0x41, 0x04}));
    // 4000 + 2 = 4002 = 0xfa2: lead 0x42, 0xfa.
    EXPECT_EQ(aml::pkg_length(4000), (Bytes{0x42, 0xfa}));
    // 5000 + 3 = 5003 = 0x138b: lead 0x80 | 0xb, 0x38, 0x01.
    EXPECT_EQ(aml::pkg_length(5000), (Bytes{0x8b, 0x38, 0x01}));
}

TEST(Aml, Integers) {
    EXPECT_EQ(aml::integer(0), (Bytes{0x00}));
    EXPECT_EQ(aml::integer(1), (Bytes{0x01}));
    EXPECT_EQ(aml::integer(5), (Bytes{0x0a, 0x05}));
    EXPECT_EQ(aml::integer(0x1234), (Bytes{0x0b, 0x34, 0x12}));
    EXPECT_EQ(aml::integer(0x12345678), (Bytes{0x0c, 0x78, 0x56, 0x34, 0x12}));
    EXPECT_EQ(aml::integer(0x100000000ull), (Bytes{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(Aml, EisaIdMatchesIasl) {
    // iasl compiles EISAID("PNP0A03") to 0x030AD041 and EISAID("PNP0A08") to 0x080AD041.
    EXPECT_EQ(aml::eisa_id("PNP0A03"), (Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x03}));
    EXPECT_EQ(aml::eisa_id("PNP0A08"), (Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x08}));
}

TEST(Aml, NameAndPackage) {
    Bytes s5 = aml::name("_S5_", aml::package({aml::integer(5), aml::integer(5), aml::integer(0), aml::integer(0)}));
    EXPECT_EQ(s5, (Bytes{0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00}));
}

TEST(Aml, DeviceInRootScope) {
    Bytes d = aml::scope("\\_SB_", {aml::device("PCI0", {aml::name("_UID", aml::integer(0))})});
    // Scope: 0x10 PkgLength '\' "_SB_" ...; Device: 0x5b 0x82 PkgLength "PCI0" ...
    ASSERT_GE(d.size(), 20u);
    EXPECT_EQ(d[0], 0x10);
    EXPECT_EQ(d[1], d.size() - 1);  // one-byte PkgLength covers everything after the opcode
    EXPECT_EQ(d[2], '\\');
    EXPECT_EQ(std::string(d.begin() + 3, d.begin() + 7), "_SB_");
    EXPECT_EQ(d[7], 0x5b);
    EXPECT_EQ(d[8], 0x82);
    EXPECT_EQ(std::string(d.begin() + 10, d.begin() + 14), "PCI0");
}

TEST(Aml, ResourceDescriptors) {
    EXPECT_EQ(aml::io_port(0xcf8, 0xcf8, 1, 8), (Bytes{0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08}));
    Bytes bus = aml::word_bus_number(0, 0);
    ASSERT_EQ(bus.size(), 16u);  // 3-byte large-item header + 13
    EXPECT_EQ(bus[0], 0x88);
    EXPECT_EQ(bus[1], 13);
    EXPECT_EQ(bus[3], 2);  // bus number range
    EXPECT_EQ(bus[14], 1);  // length 1
    Bytes mem = aml::dword_memory(0xc0000000, 0xdfffffff);
    ASSERT_EQ(mem.size(), 26u);
    EXPECT_EQ(mem[0], 0x87);
    EXPECT_EQ(mem[1], 23);
    uint32_t len = mem[22] | (mem[23] << 8) | (mem[24] << 16) | (uint32_t(mem[25]) << 24);
    EXPECT_EQ(len, 0x20000000u);
    Bytes q = aml::qword_memory(0x1000000000ull, 0x1fffffffffull);
    ASSERT_EQ(q.size(), 46u);
    EXPECT_EQ(q[0], 0x8a);
    EXPECT_EQ(aml::end_tag(), (Bytes{0x79, 0x00}));
}
