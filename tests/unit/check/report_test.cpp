// Text and JSON output of `kvmkit check`.
#include "check/report.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fake_hosts.hpp"

using namespace kvmkit::check;
using namespace kvmkit::check::testing;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// A host with one WARN (no vhost-net) and one FAIL (EBUSY).
std::vector<CheckResult> mixed_results() {
    HostFacts f = pvm_host();
    f.vhost_net = DeviceFacts{.path = "/dev/vhost-net"};
    f.create_vm = CallOutcome::failure(EBUSY);
    return evaluate_host(f);
}

}  // namespace

TEST(TextReport, OneLinePerCheckPlusHintsAndSummary) {
    auto results = mixed_results();
    std::ostringstream out;
    write_text(results, out);
    auto lines = lines_of(out.str());

    size_t width = 0;
    for (const auto& r : results) width = std::max(width, r.name.size());

    size_t i = 0;
    for (const auto& r : results) {
        ASSERT_LT(i, lines.size());
        const std::string& line = lines[i++];
        // "PASS  <name padded>  <detail>"
        EXPECT_EQ(line.substr(0, 4), to_string(r.status)) << line;
        EXPECT_EQ(line.substr(4, 2), "  ") << line;
        EXPECT_EQ(line.substr(6, r.name.size()), r.name) << line;
        EXPECT_EQ(line.substr(6 + width, 2), "  ") << line;
        EXPECT_EQ(line.substr(8 + width), r.detail) << line;
        if (r.status != Status::Pass) {
            ASSERT_LT(i, lines.size());
            EXPECT_EQ(lines[i++], "      hint: " + r.hint);
        }
    }
    ASSERT_EQ(i + 1, lines.size()) << out.str();
    EXPECT_EQ(lines.back(), "result: FAIL (" + std::to_string(results.size() - 2) + " passed, 1 warning, 1 failed)");
}

TEST(TextReport, PassingHostHasNoHints) {
    std::ostringstream out;
    write_text(evaluate_host(intel_host()), out);
    EXPECT_EQ(out.str().find("hint:"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("result: PASS"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("PASS  KVM API version"), std::string::npos) << out.str();
}

TEST(JsonReport, ValidAndSameEntries) {
    for (const auto& results : {mixed_results(), evaluate_host(intel_host()), evaluate_host(pvm_host())}) {
        std::ostringstream out;
        write_json(results, out);
        nlohmann::json doc = nlohmann::json::parse(out.str());  // throws when invalid
        ASSERT_TRUE(doc.is_object());
        ASSERT_TRUE(doc["checks"].is_array());
        ASSERT_EQ(doc["checks"].size(), results.size());
        for (size_t i = 0; i < results.size(); ++i) {
            const auto& c = doc["checks"][i];
            EXPECT_EQ(c["name"], results[i].name);
            EXPECT_EQ(c["status"], to_string(results[i].status));
            EXPECT_EQ(c["detail"], results[i].detail);
            EXPECT_EQ(c["hint"], results[i].hint);
        }
        EXPECT_EQ(doc["result"], to_string(overall_status(results)));
    }
}

TEST(JsonReport, ResultReflectsWorstStatus) {
    std::ostringstream out;
    write_json(mixed_results(), out);
    EXPECT_EQ(nlohmann::json::parse(out.str())["result"], "FAIL");

    HostFacts f = pvm_host();
    f.vhost_net = DeviceFacts{.path = "/dev/vhost-net"};
    std::ostringstream warn_out;
    write_json(evaluate_host(f), warn_out);
    EXPECT_EQ(nlohmann::json::parse(warn_out.str())["result"], "WARN");
}

TEST(JsonReport, EscapesQuotesAndBadUtf8) {
    std::vector<CheckResult> results = {{"x", Status::Warn, "quote \" and \xff byte", "KERNEL==\"kvm\""}};
    std::ostringstream out;
    write_json(results, out);
    auto doc = nlohmann::json::parse(out.str());
    EXPECT_EQ(doc["checks"][0]["hint"], "KERNEL==\"kvm\"");
    EXPECT_EQ(doc["result"], "WARN");
}
