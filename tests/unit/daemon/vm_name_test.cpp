#include "daemon/vm_name.hpp"

#include <gtest/gtest.h>

namespace kvmkit::daemon {
namespace {

TEST(VmName, AcceptsTheSafeAlphabet) {
    for (const char* n : {"web1", "a", "Db-2.test_x", "0vm"}) EXPECT_TRUE(validate_vm_name(n).has_value()) << n;
    EXPECT_TRUE(validate_vm_name(std::string(64, 'x')).has_value());
}

TEST(VmName, RefusesWhatCouldEscapeADirectoryOrLookLikeAnOption) {
    for (const char* n : {"", ".", "..", "../x", "a/b", ".hidden", "-rf", "_x", "a b", "a\nb", "é"})
        EXPECT_FALSE(validate_vm_name(n).has_value()) << n;
    EXPECT_FALSE(validate_vm_name(std::string(65, 'x')).has_value());
    EXPECT_NE(validate_vm_name("a/b").error().message().find("may only contain"), std::string::npos);
}

}  // namespace
}  // namespace kvmkit::daemon
