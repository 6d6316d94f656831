#include "daemon/event_log.hpp"

#include "base/log.hpp"

namespace kvmkit::daemon {

void EventLog::publish(const std::string& vm, const std::string& type, const std::string& detail) {
    Event e;
    e.vm = vm;
    e.type = type;
    e.detail = detail;
    e.time_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    {
        std::lock_guard lock(mutex_);
        e.seq = next_seq_++;
        events_.push_back(e);
        if (events_.size() > kCapacity) events_.pop_front();
    }
    LOG_INFO("event %s: %s (%s)", vm.c_str(), type.c_str(), detail.c_str());
    changed_.notify_all();
}

uint64_t EventLog::last_seq() const {
    std::lock_guard lock(mutex_);
    return next_seq_ - 1;
}

std::vector<Event> EventLog::wait_after(uint64_t after, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return closed_ || next_seq_ - 1 > after; });
    std::vector<Event> out;
    for (const auto& e : events_)
        if (e.seq > after) out.push_back(e);
    return out;
}

void EventLog::close() {
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    changed_.notify_all();
}

}  // namespace kvmkit::daemon
