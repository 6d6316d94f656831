// Logging: one line per event, level first, to stderr (never to the guest
// console, which owns stdout). The VM name is set once per process.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <string>

namespace kvmkit::base {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
void set_log_name(std::string name);
LogLevel parse_log_level(const std::string& s, LogLevel fallback);

void log_message(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Allows at most `burst` messages per `period`; used for guest-triggered
// warnings so a hostile guest cannot flood the log.
class RateLimiter {
public:
    explicit RateLimiter(int burst = 10, std::chrono::seconds period = std::chrono::seconds(5))
        : burst_(burst), period_(period) {}
    bool allow();

private:
    int burst_;
    std::chrono::seconds period_;
    std::atomic<int64_t> window_start_{0};
    std::atomic<int> count_{0};
};

}  // namespace kvmkit::base

#define LOG_ERROR(...) ::kvmkit::base::log_message(::kvmkit::base::LogLevel::Error, __VA_ARGS__)
#define LOG_WARN(...) ::kvmkit::base::log_message(::kvmkit::base::LogLevel::Warn, __VA_ARGS__)
#define LOG_INFO(...)                                                              \
    do {                                                                           \
        if (::kvmkit::base::log_level() >= ::kvmkit::base::LogLevel::Info)         \
            ::kvmkit::base::log_message(::kvmkit::base::LogLevel::Info, __VA_ARGS__); \
    } while (0)
#define LOG_DEBUG(...)                                                             \
    do {                                                                           \
        if (::kvmkit::base::log_level() >= ::kvmkit::base::LogLevel::Debug)        \
            ::kvmkit::base::log_message(::kvmkit::base::LogLevel::Debug, __VA_ARGS__); \
    } while (0)
