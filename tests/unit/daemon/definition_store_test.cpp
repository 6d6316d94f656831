#include "daemon/definition_store.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "base/file.hpp"

namespace kvmkit::daemon {
namespace {

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/kvmkit-store-XXXXXX";
        dir_ = mkdtemp(tmpl);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string dir_;
};

TEST_F(StoreTest, DefineLoadListUndefine) {
    auto store = DefinitionStore::open(dir_ + "/state");
    ASSERT_TRUE(store) << store.error().message();
    auto c = store->define(R"({"name": "b", "memory": "64M", "cmdline": ""})");
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_TRUE(store->define(R"({"name": "a"})"));
    EXPECT_EQ(store->names(), (std::vector<std::string>{"a", "b"}));
    auto b = store->load("b");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->memory, 64u << 20);
    EXPECT_TRUE(b->cmdline_set);  // the canonical form keeps an explicitly empty command line
    struct stat st {};
    ASSERT_EQ(stat(store->definition_path("b").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // Only the definitions are in vms/: no temporary file is left behind.
    size_t files = 0;
    for (auto& e : std::filesystem::directory_iterator(dir_ + "/state/vms")) (void)e, ++files;
    EXPECT_EQ(files, 2u);

    ASSERT_TRUE(store->undefine("b"));
    EXPECT_FALSE(store->exists("b"));
    EXPECT_EQ(store->names(), (std::vector<std::string>{"a"}));
    EXPECT_FALSE(store->undefine("b"));
}

TEST_F(StoreTest, RedefineReplaces) {
    auto store = DefinitionStore::open(dir_);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->define(R"({"name": "a", "cpus": 1})"));
    ASSERT_TRUE(store->define(R"({"name": "a", "cpus": 2})"));
    EXPECT_EQ(store->load("a")->cpus, 2u);
}

TEST_F(StoreTest, BadDefinitionsAreRefusedAndNothingIsWritten) {
    auto store = DefinitionStore::open(dir_);
    ASSERT_TRUE(store);
    struct Case {
        const char* text;
        const char* error;
    } cases[] = {
        {R"({"memory": "64M"})", "\"name\": missing"},
        {R"({"name": "../x"})", "\"name\": VM name '../x'"},
        {R"({"name": "a", "bogus": 1})", "\"bogus\": unknown key"},
        {R"({"name": "a",)", "not valid JSON"},
        {R"("a")", "expected a JSON object"},
    };
    for (const auto& c : cases) {
        auto r = store->define(c.text);
        ASSERT_FALSE(r) << c.text;
        EXPECT_NE(r.error().message().find(c.error), std::string::npos) << r.error().message();
    }
    EXPECT_TRUE(store->names().empty());
}

TEST_F(StoreTest, AutostartIsAFlagOutsideTheDocument) {
    auto store = DefinitionStore::open(dir_);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->define(R"({"name": "a"})"));
    EXPECT_FALSE(store->autostart("a"));
    ASSERT_TRUE(store->set_autostart("a", true));
    EXPECT_TRUE(store->autostart("a"));
    std::string doc = *base::read_text_file(store->definition_path("a"));
    EXPECT_EQ(doc.find("autostart"), std::string::npos);
    ASSERT_TRUE(store->set_autostart("a", false));
    EXPECT_FALSE(store->autostart("a"));
    ASSERT_TRUE(store->set_autostart("a", true));
    ASSERT_TRUE(store->undefine("a"));
    EXPECT_FALSE(store->autostart("a"));  // undefine drops the flag too
}

}  // namespace
}  // namespace kvmkit::daemon
