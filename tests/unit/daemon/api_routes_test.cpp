#include "daemon/api_routes.hpp"

#include <gtest/gtest.h>

namespace kvmkit::daemon {
namespace {

TEST(QueryParam, FindsAndDecodes) {
    EXPECT_EQ(query_param("name=web1", "name"), "web1");
    EXPECT_EQ(query_param("after=3&timeout=10", "timeout"), "10");
    EXPECT_EQ(query_param("a=1&name=x%2Dy+z", "name"), "x-y z");
    EXPECT_EQ(query_param("names=a", "name"), "");
    EXPECT_EQ(query_param("", "name"), "");
    EXPECT_EQ(query_param("name", "name"), "");
    EXPECT_EQ(query_param("name=%zz%", "name"), "%zz%");
}

}  // namespace
}  // namespace kvmkit::daemon
