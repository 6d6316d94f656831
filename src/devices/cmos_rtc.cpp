#include "devices/cmos_rtc.hpp"

namespace kvmkit::devices {

namespace {
constexpr uint8_t kSeconds = 0x00, kMinutes = 0x02, kHours = 0x04, kWeekday = 0x06, kDay = 0x07, kMonth = 0x08,
                  kYear = 0x09, kRegA = 0x0a, kRegB = 0x0b, kRegC = 0x0c, kRegD = 0x0d, kCentury = 0x32;
constexpr uint8_t kRegB24h = 0x02, kRegBBinary = 0x04, kRegBSet = 0x80;
constexpr uint8_t kRegDValid = 0x80;
}  // namespace

CmosRtc::CmosRtc(Clock clock) : clock_(std::move(clock)) {
    cmos_[kRegA] = 0x26;  // 32.768 kHz time base, 1024 Hz rate; UIP never set
    cmos_[kRegB] = kRegB24h;
    cmos_[kRegD] = kRegDValid;
}

void CmosRtc::set_cmos_byte(uint8_t index, uint8_t value) {
    std::lock_guard lock(mutex_);
    cmos_[index & 0x7f] = value;
}

uint8_t CmosRtc::encode(int v) const {
    if (cmos_[kRegB] & kRegBBinary) return static_cast<uint8_t>(v);
    return static_cast<uint8_t>(((v / 10) << 4) | (v % 10));
}

int CmosRtc::decode(uint8_t v) const {
    if (cmos_[kRegB] & kRegBBinary) return v;
    return (v >> 4) * 10 + (v & 0x0f);
}

void CmosRtc::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (auto& b : data) b = offset == 0 ? index_ : read_register(index_);
}

void CmosRtc::write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.empty()) return;
    std::lock_guard lock(mutex_);
    if (offset == 0) {
        index_ = data[0] & 0x7f;  // bit 7 is the NMI mask on a PC, not part of the index
    } else {
        write_register(index_, data[0]);
    }
}

uint8_t CmosRtc::read_register(uint8_t index) {
    if (index > kYear && index != kCentury) {
        if (index == kRegC) {
            uint8_t v = cmos_[kRegC];
            cmos_[kRegC] = 0;  // interrupt flags clear on read
            return v;
        }
        return cmos_[index];
    }
    if (index != kSeconds && index != kMinutes && index != kHours && index != kWeekday && index != kDay &&
        index != kMonth && index != kYear && index != kCentury)
        return cmos_[index];  // alarm registers: plain storage
    struct tm tm {};
    if (cmos_[kRegB] & kRegBSet) {
        tm = held_;  // updates are stopped: the guest sees what it wrote (or the time SET froze)
    } else {
        time_t now = clock_() + offset_;
        gmtime_r(&now, &tm);
    }
    switch (index) {
        case kSeconds: return encode(tm.tm_sec);
        case kMinutes: return encode(tm.tm_min);
        case kHours: {
            if (cmos_[kRegB] & kRegB24h) return encode(tm.tm_hour);
            int h = tm.tm_hour % 12;
            return encode(h == 0 ? 12 : h) | (tm.tm_hour >= 12 ? 0x80 : 0);
        }
        case kWeekday: return encode(tm.tm_wday + 1);
        case kDay: return encode(tm.tm_mday);
        case kMonth: return encode(tm.tm_mon + 1);
        case kYear: return encode((tm.tm_year + 1900) % 100);
        case kCentury: return encode((tm.tm_year + 1900) / 100);
    }
    return 0;
}

void CmosRtc::apply_field(struct tm& tm, uint8_t index, uint8_t value) const {
    int v = decode(value & (index == kHours ? 0x7f : 0xff));
    switch (index) {
        case kSeconds: tm.tm_sec = v; break;
        case kMinutes: tm.tm_min = v; break;
        case kHours:
            if (!(cmos_[kRegB] & kRegB24h)) v = (v % 12) + ((value & 0x80) ? 12 : 0);
            tm.tm_hour = v;
            break;
        case kWeekday: tm.tm_wday = v - 1; break;
        case kDay: tm.tm_mday = v; break;
        case kMonth: tm.tm_mon = v - 1; break;
        case kYear: tm.tm_year = ((tm.tm_year + 1900) / 100 * 100 + v) - 1900; break;
        case kCentury: tm.tm_year = (v * 100 + (tm.tm_year + 1900) % 100) - 1900; break;
    }
}

void CmosRtc::commit(struct tm tm) {
    time_t set = timegm(&tm);  // normalises out-of-range fields, once, on the complete date
    if (set != -1) offset_ = set - clock_();
}

void CmosRtc::write_register(uint8_t index, uint8_t value) {
    switch (index) {
        case kRegA: cmos_[kRegA] = value & 0x7f; return;  // UIP is read-only
        case kRegB: {
            bool was_set = cmos_[kRegB] & kRegBSet, now_set = value & kRegBSet;
            if (!was_set && now_set) {
                // SET stops the update cycle: freeze the current time; field writes go there.
                time_t now = clock_() + offset_;
                held_ = {};
                gmtime_r(&now, &held_);
            }
            // Decode the held fields in the mode they were written in, then take the new mode.
            if (was_set && !now_set) commit(held_);
            cmos_[kRegB] = value;
            return;
        }
        case kRegC:
        case kRegD: return;  // read-only
        default: break;
    }
    bool is_time = index == kSeconds || index == kMinutes || index == kHours || index == kDay || index == kMonth ||
                   index == kYear || index == kCentury;
    if (cmos_[kRegB] & kRegBSet) {
        // While SET is held the MC146818A just stores the bytes; the clock is computed from
        // them when SET clears (Linux's mc146818_set_time writes the fields one by one).
        if (is_time || index == kWeekday) {
            apply_field(held_, index, value);
            return;
        }
    }
    if (!is_time) {
        cmos_[index] = value;
        return;
    }
    // Setting one field without SET: rebuild the guest's current time with that field changed.
    time_t now = clock_() + offset_;
    struct tm tm {};
    gmtime_r(&now, &tm);
    apply_field(tm, index, value);
    commit(tm);
}

}  // namespace kvmkit::devices
