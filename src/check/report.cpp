#include "check/report.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace kvmkit::check {

void write_text(const std::vector<CheckResult>& results, std::ostream& out) {
    size_t width = 0;
    for (const auto& r : results) width = std::max(width, r.name.size());
    int counts[3] = {0, 0, 0};
    for (const auto& r : results) {
        ++counts[static_cast<int>(r.status)];
        std::string line = std::string(to_string(r.status)) + "  " + r.name;
        if (!r.detail.empty()) line += std::string(width - r.name.size(), ' ') + "  " + r.detail;
        out << line << '\n';
        if (r.status != Status::Pass && !r.hint.empty()) out << "      hint: " << r.hint << '\n';
    }
    auto plural = [](int n, const char* word) {
        return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
    };
    out << "result: " << to_string(overall_status(results)) << " (" << counts[0] << " passed, "
        << plural(counts[1], "warning") << ", " << counts[2] << " failed)\n";
}

void write_json(const std::vector<CheckResult>& results, std::ostream& out) {
    nlohmann::ordered_json checks = nlohmann::ordered_json::array();
    for (const auto& r : results) {
        checks.push_back({
            {"name", r.name},
            {"status", to_string(r.status)},
            {"detail", r.detail},
            {"hint", r.hint},
        });
    }
    nlohmann::ordered_json doc = {{"checks", std::move(checks)}, {"result", to_string(overall_status(results))}};
    // Keys keep the order written here; invalid UTF-8 (e.g. from a strange
    // /proc/cpuinfo) is replaced instead of throwing.
    out << doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

}  // namespace kvmkit::check
