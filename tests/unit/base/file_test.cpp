#include "base/file.hpp"

#include <gtest/gtest.h>

using namespace kvmkit::base;

TEST(ParseSize, Suffixes) {
    EXPECT_EQ(*parse_size("512M"), 512ull << 20);
    EXPECT_EQ(*parse_size("4G"), 4ull << 30);
    EXPECT_EQ(*parse_size("4GiB"), 4ull << 30);
    EXPECT_EQ(*parse_size("1024k"), 1024ull << 10);
    EXPECT_EQ(*parse_size("65536"), 65536ull);
}

TEST(ParseSize, Rejects) {
    EXPECT_FALSE(parse_size(""));
    EXPECT_FALSE(parse_size("M"));
    EXPECT_FALSE(parse_size("12X"));
    EXPECT_FALSE(parse_size("12MM"));
    EXPECT_FALSE(parse_size("99999999999999999999"));
    EXPECT_FALSE(parse_size("17179869184T"));
}

TEST(ReadFile, MissingFileNamesPath) {
    auto r = read_file("/nonexistent/kvmkit");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("/nonexistent/kvmkit"), std::string::npos);
}
