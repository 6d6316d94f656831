#include "base/file.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

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

TEST(WriteFileAtomic, ReplacesWholeFilesAndLeavesNoTemporary) {
    char tmpl[] = "/tmp/kvmkit-file-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    std::string p = dir + "/f";
    ASSERT_TRUE(write_file_atomic(p, "old contents that are longer", 0640));
    ASSERT_TRUE(write_file_atomic(p, "new", 0640));
    EXPECT_EQ(*read_text_file(p), "new");
    struct stat st {};
    ASSERT_EQ(stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
    size_t files = 0;
    for (auto& e : std::filesystem::directory_iterator(dir)) (void)e, ++files;
    EXPECT_EQ(files, 1u);
    auto bad = write_file_atomic(dir + "/missing-dir/f", "x");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("missing-dir"), std::string::npos);
    std::filesystem::remove_all(dir);
}
