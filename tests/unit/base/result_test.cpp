#include "base/result.hpp"

#include <gtest/gtest.h>

using namespace kvmkit::base;

namespace {
Result<int> half(int x) {
    if (x % 2) return fail("odd number " + std::to_string(x));
    return x / 2;
}
Result<int> quarter(int x) {
    int h = TRY_CTX(half(x), "quarter");
    return TRY(half(h));
}
}  // namespace

TEST(Result, ValueAndError) {
    auto r = half(4);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, 2);
    auto e = half(3);
    ASSERT_FALSE(e.has_value());
    EXPECT_EQ(e.error().message(), "odd number 3");
}

TEST(Result, TryPropagatesWithContextOutermostFirst) {
    EXPECT_EQ(*quarter(8), 2);
    auto e = quarter(6);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().message(), "odd number 3");
    auto e2 = quarter(5);
    ASSERT_FALSE(e2);
    EXPECT_EQ(e2.error().message(), "quarter: odd number 5");
}

TEST(Result, ErrnoMessage) {
    auto e = Error::from_errno("open 'x'", ENOENT);
    EXPECT_EQ(e.message(), "open 'x': No such file or directory");
    EXPECT_EQ(e.errnum(), ENOENT);
}
