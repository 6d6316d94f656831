#include "http/unix_socket.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "test_socket.hpp"

namespace kvmkit::http {
namespace {

TEST(ListenUnix, SetsTheMode) {
    testing::TempDir dir;
    for (mode_t mode : {mode_t(0600), mode_t(0660)}) {
        std::string path = dir.file("m" + std::to_string(mode) + ".sock");
        ListenOptions options;
        options.mode = mode;
        auto fd = listen_unix(path, options);
        ASSERT_TRUE(fd) << fd.error().message();
        struct stat st {};
        ASSERT_EQ(stat(path.c_str(), &st), 0);
        EXPECT_TRUE(S_ISSOCK(st.st_mode));
        EXPECT_EQ(st.st_mode & 0777, mode);
    }
}

TEST(ListenUnix, SetsTheGroup) {
    testing::TempDir dir;
    std::string path = dir.file("g.sock");
    gid_t gid = getegid();
    ListenOptions options;
    options.mode = 0660;
    options.group = gid;
    auto fd = listen_unix(path, options);
    ASSERT_TRUE(fd) << fd.error().message();
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_gid, gid);
}

TEST(ListenUnix, ReplacesAStaleSocket) {
    testing::TempDir dir;
    std::string path = dir.file("s.sock");
    {
        auto fd = listen_unix(path);
        ASSERT_TRUE(fd);
    }  // closed: the file stays, nobody listens
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    auto again = listen_unix(path);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_TRUE(connect_unix(path));
}

TEST(ListenUnix, RefusesASocketInUse) {
    testing::TempDir dir;
    std::string path = dir.file("s.sock");
    auto first = listen_unix(path);
    ASSERT_TRUE(first);
    auto second = listen_unix(path);
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message().find("in use"), std::string::npos) << second.error().message();
    EXPECT_TRUE(connect_unix(path));  // the first one still works
}

TEST(ListenUnix, RefusesToReplaceARegularFile) {
    testing::TempDir dir;
    std::string path = dir.file("file");
    std::ofstream(path) << "keep me";
    auto fd = listen_unix(path);
    ASSERT_FALSE(fd);
    EXPECT_NE(fd.error().message().find("not a socket"), std::string::npos);
    std::ifstream in(path);
    std::string content;
    std::getline(in, content);
    EXPECT_EQ(content, "keep me");
}

TEST(ListenUnix, RejectsATooLongPath) {
    auto fd = listen_unix("/tmp/" + std::string(200, 'x'));
    ASSERT_FALSE(fd);
    EXPECT_NE(fd.error().message().find("too long"), std::string::npos);
}

TEST(GroupId, ByNameAndNumber) {
    auto root = group_id("root");
    ASSERT_TRUE(root) << root.error().message();
    EXPECT_EQ(*root, 0u);
    auto num = group_id("1234");
    ASSERT_TRUE(num);
    EXPECT_EQ(*num, 1234u);
    EXPECT_FALSE(group_id("no-such-group-kvmkit"));
}

}  // namespace
}  // namespace kvmkit::http
