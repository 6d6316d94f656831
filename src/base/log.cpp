#include "base/log.hpp"

#include <cstdio>
#include <mutex>

namespace kvmkit::base {

namespace {
std::atomic<LogLevel> g_level{LogLevel::Warn};
std::string g_name = "kvmkit";
std::mutex g_mutex;  // serialises whole lines from several vCPU threads

const char* level_name(LogLevel l) {
    switch (l) {
        case LogLevel::Error: return "error";
        case LogLevel::Warn: return "warn";
        case LogLevel::Info: return "info";
        case LogLevel::Debug: return "debug";
    }
    return "?";
}
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }
void set_log_name(std::string name) {
    std::lock_guard lock(g_mutex);
    g_name = std::move(name);
}

LogLevel parse_log_level(const std::string& s, LogLevel fallback) {
    if (s == "error") return LogLevel::Error;
    if (s == "warn") return LogLevel::Warn;
    if (s == "info") return LogLevel::Info;
    if (s == "debug") return LogLevel::Debug;
    return fallback;
}

void log_message(LogLevel level, const char* fmt, ...) {
    if (level > g_level.load()) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    std::lock_guard lock(g_mutex);
    // "\r\n"-free on purpose; a raw-mode terminal is handled by the console.
    fprintf(stderr, "%s: [%s] %s\n", level_name(level), g_name.c_str(), buf);
}

bool RateLimiter::allow() {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
                   .count();
    int64_t start = window_start_.load();
    if (now - start >= period_.count()) {
        if (window_start_.compare_exchange_strong(start, now)) count_ = 0;
    }
    return count_.fetch_add(1) < burst_;
}

}  // namespace kvmkit::base
