// EventLog: lifecycle events with increasing sequence numbers, kept in a
// bounded ring so that a client can long-poll ("everything after N, waiting up
// to T seconds") and never miss an event between two polls unless it falls
// more than kCapacity events behind. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace kvmkit::daemon {

struct Event {
    uint64_t seq = 0;
    int64_t time_ms = 0;  // wall clock, ms since the epoch
    std::string vm;
    std::string type;    // defined, undefined, started, suspended, resumed, shutdown, stopped, crashed
    std::string detail;  // booted, user, finished, destroyed, rebooted, ... or a crash reason
};

class EventLog {
public:
    static constexpr size_t kCapacity = 1000;

    void publish(const std::string& vm, const std::string& type, const std::string& detail);
    uint64_t last_seq() const;
    // Events with seq > after; waits up to `timeout` for the first one. Returns
    // early (possibly empty) when close() is called.
    std::vector<Event> wait_after(uint64_t after, std::chrono::milliseconds timeout);
    void close();

private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<Event> events_;
    uint64_t next_seq_ = 1;
    bool closed_ = false;
};

}  // namespace kvmkit::daemon
