#include "vmm/byte_ring.hpp"

#include <gtest/gtest.h>
#include <linux/kvm.h>

#include "vmm/exit_counters.hpp"

namespace kvmkit::vmm {
namespace {

std::span<const uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(ByteRing, KeepsEverythingUntilFull) {
    ByteRing r(8);
    EXPECT_EQ(r.contents(), "");
    r.append(bytes("abc"));
    r.append(bytes("de"));
    EXPECT_EQ(r.contents(), "abcde");
}

TEST(ByteRing, KeepsTheLastBytesWhenItWraps) {
    ByteRing r(8);
    r.append(bytes("abcdef"));
    r.append(bytes("ghij"));
    EXPECT_EQ(r.contents(), "cdefghij");
    r.append(bytes("0123456789XYZ"));  // longer than the ring
    EXPECT_EQ(r.contents(), "56789XYZ");
    EXPECT_EQ(r.size(), 8u);
}

TEST(ExitCounters, CountsPerVcpuAndInTotal) {
    ExitCounters c(2);
    c.count(0, KVM_EXIT_IO);
    c.count(0, KVM_EXIT_IO);
    c.count(1, KVM_EXIT_MMIO);
    c.count(1, 1000);  // beyond the table
    auto v0 = c.for_vcpu(0);
    EXPECT_EQ(v0.size(), 1u);
    EXPECT_EQ(v0["IO"], 2u);
    auto total = c.totals();
    EXPECT_EQ(total["IO"], 2u);
    EXPECT_EQ(total["MMIO"], 1u);
    EXPECT_EQ(total["OTHER"], 1u);
}

}  // namespace
}  // namespace kvmkit::vmm
