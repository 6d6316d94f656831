#include "daemon/event_log.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace kvmkit::daemon {
namespace {

using namespace std::chrono_literals;

TEST(EventLog, SequenceNumbersAndLongPoll) {
    EventLog log;
    EXPECT_EQ(log.last_seq(), 0u);
    log.publish("a", "started", "booted");
    log.publish("a", "suspended", "paused");
    auto all = log.wait_after(0, 0ms);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].seq, 1u);
    EXPECT_EQ(all[1].type, "suspended");
    EXPECT_TRUE(log.wait_after(2, 0ms).empty());

    // A waiter wakes for an event published later (no time-out reached: 60 s).
    std::thread later([&] {
        std::this_thread::sleep_for(50ms);
        log.publish("b", "stopped", "destroyed");
    });
    auto got = log.wait_after(2, 60s);
    later.join();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].vm, "b");
    EXPECT_EQ(got[0].seq, 3u);
}

TEST(EventLog, KeepsABoundedHistory) {
    EventLog log;
    for (size_t i = 0; i < EventLog::kCapacity + 10; ++i) log.publish("a", "started", "booted");
    auto all = log.wait_after(0, 0ms);
    EXPECT_EQ(all.size(), EventLog::kCapacity);
    EXPECT_EQ(all.front().seq, 11u);
}

TEST(EventLog, CloseWakesWaiters) {
    EventLog log;
    std::thread closer([&] {
        std::this_thread::sleep_for(50ms);
        log.close();
    });
    EXPECT_TRUE(log.wait_after(0, 60s).empty());
    closer.join();
}

}  // namespace
}  // namespace kvmkit::daemon
