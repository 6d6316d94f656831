#include "virtio/transport/virtio_pci.hpp"

#include <sys/eventfd.h>

#include <algorithm>
#include <cstring>

#include "base/log.hpp"

namespace kvmkit::virtio {

namespace {
constexpr uint8_t kStatusAcknowledge = 1, kStatusDriver = 2, kStatusDriverOk = 4, kStatusFeaturesOk = 8,
                  kStatusNeedsReset = 64, kStatusFailed = 128;
constexpr uint8_t kVendorCap = 0x09;
constexpr uint8_t kCapCommon = 1, kCapNotify = 2, kCapIsr = 3, kCapDevice = 4, kCapPciCfg = 5;
constexpr uint16_t kNoVector = 0xffff;

// Common configuration layout (spec 4.1.4.3).
enum CommonReg : uint64_t {
    kDeviceFeatureSelect = 0x00,
    kDeviceFeature = 0x04,
    kDriverFeatureSelect = 0x08,
    kDriverFeature = 0x0c,
    kConfigMsixVector = 0x10,
    kNumQueues = 0x12,
    kDeviceStatus = 0x14,
    kConfigGeneration = 0x15,
    kQueueSelect = 0x16,
    kQueueSize = 0x18,
    kQueueMsixVector = 0x1a,
    kQueueEnable = 0x1c,
    kQueueNotifyOff = 0x1e,
    kQueueDesc = 0x20,
    kQueueDriver = 0x28,
    kQueueDevice = 0x30,
    kCommonSize = 0x38,
};

struct Field {
    uint64_t offset;
    unsigned size;
};
constexpr Field kFields[] = {{kDeviceFeatureSelect, 4}, {kDeviceFeature, 4}, {kDriverFeatureSelect, 4},
                             {kDriverFeature, 4},       {kConfigMsixVector, 2}, {kNumQueues, 2},
                             {kDeviceStatus, 1},        {kConfigGeneration, 1}, {kQueueSelect, 2},
                             {kQueueSize, 2},           {kQueueMsixVector, 2}, {kQueueEnable, 2},
                             {kQueueNotifyOff, 2},      {kQueueDesc, 8},       {kQueueDriver, 8},
                             {kQueueDevice, 8}};

uint32_t class_code(DeviceType t) {
    switch (t) {
        case DeviceType::Net: return 0x020000;      // network controller
        case DeviceType::Block: return 0x010000;    // mass storage (SCSI, as other VMMs report)
        case DeviceType::Console: return 0x078000;  // communication controller, other
        case DeviceType::Entropy: return 0xff0000;  // unassigned class
    }
    return 0xff0000;
}

base::RateLimiter g_guest_warn(10);
}  // namespace

VirtioPciDevice::VirtioPciDevice(std::shared_ptr<VirtioDevice> dev, memory::GuestMemory& mem)
    : dev_(std::move(dev)),
      mem_(mem),
      cfg_(pci::PciIds{0x1af4, static_cast<uint16_t>(0x1040 + static_cast<uint16_t>(dev_->type())),
                       class_code(dev_->type()), 1, 0x1af4, 0x40}) {}

base::Result<std::shared_ptr<VirtioPciDevice>> VirtioPciDevice::create(std::shared_ptr<VirtioDevice> dev,
                                                                       memory::GuestMemory& mem,
                                                                       uint64_t bar_address) {
    std::shared_ptr<VirtioPciDevice> t(new VirtioPciDevice(std::move(dev), mem));
    uint16_t nq = t->dev_->num_queues();
    if (nq == 0 || uint64_t(nq) * kNotifyMultiplier > kMsixTableOffset - kNotifyOffset)
        return base::fail(std::string(t->dev_->name()) + ": bad queue count " + std::to_string(nq));
    t->queues_.resize(nq);
    for (uint16_t q = 0; q < nq; ++q) {
        t->queues_[q].max_size = t->dev_->queue_max_size(q);
        t->queues_[q].size = t->queues_[q].max_size;
        t->queues_[q].notify = std::make_unique<base::EventFd>(TRY(base::EventFd::create(EFD_NONBLOCK)));
    }
    t->offered_ = t->dev_->device_features() | kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc;

    t->cfg_.set_bar(0, pci::BarInfo{kBarSize, true, false}, bar_address);
    auto add_cap = [&](uint8_t type, uint64_t offset, uint32_t length, std::span<const uint8_t> extra = {},
                       std::span<const uint8_t> extra_writable = {}) {
        std::vector<uint8_t> body(14 + extra.size(), 0);
        body[0] = static_cast<uint8_t>(16 + extra.size());  // cap_len, counting ID and next
        body[1] = type;
        body[2] = 0;  // BAR
        uint32_t off32 = static_cast<uint32_t>(offset);
        std::memcpy(&body[6], &off32, 4);
        std::memcpy(&body[10], &length, 4);
        // An empty span may have a null data(): memcpy's arguments must not be null even for 0 bytes.
        if (!extra.empty()) std::memcpy(body.data() + 14, extra.data(), extra.size());
        std::vector<uint8_t> writable;
        if (!extra_writable.empty()) {
            writable.assign(body.size(), 0);
            std::memcpy(writable.data() + 14, extra_writable.data(), extra_writable.size());
        }
        return t->cfg_.add_capability(kVendorCap, body, writable);
    };
    add_cap(kCapCommon, kCommonOffset, kCommonSize);
    add_cap(kCapIsr, kIsrOffset, 1);
    add_cap(kCapDevice, kDeviceCfgOffset, 0x1000);
    uint32_t mult = kNotifyMultiplier;
    add_cap(kCapNotify, kNotifyOffset, nq * kNotifyMultiplier,
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&mult), 4));
    t->msix_ = std::make_unique<pci::Msix>(t->cfg_, static_cast<uint16_t>(nq + 1), 0, kMsixTableOffset,
                                           kMsixPbaOffset);
    return t;
}

void VirtioPciDevice::config_written(uint16_t /*offset*/, size_t /*len*/) { msix_->control_written(); }

void VirtioPciDevice::bar_read(uint8_t bar, uint64_t offset, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), uint8_t{0});
    if (bar != 0) return;
    if (offset < kIsrOffset) {
        common_read(offset - kCommonOffset, data);
    } else if (offset < kDeviceCfgOffset) {
        if (offset == kIsrOffset && !data.empty()) data[0] = isr_.exchange(0);  // reading ISR clears it
    } else if (offset < kNotifyOffset) {
        dev_->read_config(offset - kDeviceCfgOffset, data);
    } else if (offset < kMsixTableOffset) {
        // notify region reads as zero
    } else if (offset < kMsixPbaOffset) {
        msix_->table_read(offset - kMsixTableOffset, data);
    } else {
        msix_->pba_read(offset - kMsixPbaOffset, data);
    }
}

void VirtioPciDevice::bar_write(uint8_t bar, uint64_t offset, std::span<const uint8_t> data) {
    if (bar != 0) return;
    if (offset < kIsrOffset) {
        common_write(offset - kCommonOffset, data);
    } else if (offset < kDeviceCfgOffset) {
        // ISR is read-only
    } else if (offset < kNotifyOffset) {
        dev_->write_config(offset - kDeviceCfgOffset, data);
    } else if (offset < kMsixTableOffset) {
        // A notification that did not go through KVM's ioeventfd (other width): same path.
        uint64_t q = (offset - kNotifyOffset) / kNotifyMultiplier;
        if (q < queues_.size()) (void)queues_[q].notify->write(1);
    } else if (offset < kMsixPbaOffset) {
        msix_->table_write(offset - kMsixTableOffset, data);
    }
}

uint64_t VirtioPciDevice::common_value(uint64_t reg) const {
    const Queue* q = queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
    switch (reg) {
        case kDeviceFeatureSelect: return device_feature_select_;
        case kDeviceFeature:
            return device_feature_select_ < 2 ? (offered_ >> (32 * device_feature_select_)) & 0xffffffff : 0;
        case kDriverFeatureSelect: return driver_feature_select_;
        case kDriverFeature:
            return driver_feature_select_ < 2 ? (driver_features_ >> (32 * driver_feature_select_)) & 0xffffffff : 0;
        case kConfigMsixVector: return config_msix_vector_;
        case kNumQueues: return queues_.size();
        case kDeviceStatus: return status_;
        case kConfigGeneration: return config_generation_;
        case kQueueSelect: return queue_select_;
        case kQueueSize: return q ? q->size : 0;  // 0 for a non-existent queue
        case kQueueMsixVector: return q ? q->msix_vector : kNoVector;
        case kQueueEnable: return q ? q->enabled : 0;
        case kQueueNotifyOff: return q ? queue_select_ : 0;
        case kQueueDesc: return q ? q->desc : 0;
        case kQueueDriver: return q ? q->driver : 0;
        case kQueueDevice: return q ? q->device : 0;
    }
    return 0;
}

void VirtioPciDevice::common_read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t o = offset + i;
        for (const auto& f : kFields) {
            if (o >= f.offset && o < f.offset + f.size) data[i] = (common_value(f.offset) >> (8 * (o - f.offset))) & 0xff;
        }
    }
}

void VirtioPciDevice::common_write(uint64_t offset, std::span<const uint8_t> data) {
    bool activate = false, do_reset = false;
    {
        std::lock_guard lock(mutex_);
        for (const auto& f : kFields) {
            if (offset + data.size() <= f.offset || offset >= f.offset + f.size) continue;
            // Merge the written bytes into the field's current value (drivers may split 64-bit fields).
            uint64_t v = common_value(f.offset);
            for (size_t i = 0; i < data.size(); ++i) {
                uint64_t o = offset + i;
                if (o < f.offset || o >= f.offset + f.size) continue;
                unsigned s = 8 * (o - f.offset);
                v = (v & ~(0xffull << s)) | (uint64_t(data[i]) << s);
            }
            Queue* q = queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
            // Queue registers are frozen once the queue is enabled or the device runs (spec 4.1.4.3.2).
            bool queue_writable = q && !q->enabled && !(status_ & kStatusDriverOk);
            switch (f.offset) {
                case kDeviceFeatureSelect: device_feature_select_ = static_cast<uint32_t>(v); break;
                case kDriverFeatureSelect: driver_feature_select_ = static_cast<uint32_t>(v); break;
                case kDriverFeature:
                    if (!(status_ & kStatusFeaturesOk) && driver_feature_select_ < 2) {
                        unsigned s = 32 * driver_feature_select_;
                        driver_features_ = (driver_features_ & ~(0xffffffffull << s)) | ((v & 0xffffffff) << s);
                    }
                    break;
                case kConfigMsixVector: config_msix_vector_ = static_cast<uint16_t>(v); break;
                case kDeviceStatus: {
                    uint8_t s = static_cast<uint8_t>(v);
                    if (s == 0) {
                        do_reset = true;
                    } else {
                        bool was_ok = status_ & kStatusDriverOk;
                        set_status(s);
                        activate = !was_ok && (status_ & kStatusDriverOk);
                    }
                    break;
                }
                case kQueueSelect: queue_select_ = static_cast<uint16_t>(v); break;
                case kQueueSize:
                    // A power of two no larger than the maximum; anything else is kept out.
                    if (queue_writable && v && v <= q->max_size && !(v & (v - 1))) q->size = static_cast<uint16_t>(v);
                    break;
                case kQueueMsixVector:
                    if (q) q->msix_vector = static_cast<uint16_t>(v);
                    break;
                case kQueueEnable:
                    if (queue_writable && v == 1) q->enabled = true;
                    break;
                case kQueueDesc:
                    if (queue_writable) q->desc = v;
                    break;
                case kQueueDriver:
                    if (queue_writable) q->driver = v;
                    break;
                case kQueueDevice:
                    if (queue_writable) q->device = v;
                    break;
                default: break;  // read-only fields
            }
        }
    }
    if (do_reset) {
        dev_->reset();
        std::lock_guard lock(mutex_);
        reset_locked();
        return;
    }
    if (activate) {
        std::vector<QueueConfig> qs;
        uint64_t features;
        {
            std::lock_guard lock(mutex_);
            features = driver_features_;
            for (const auto& q : queues_) {
                QueueConfig c;
                if (q.enabled) {
                    c.size = q.size;
                    c.desc_table = q.desc;
                    c.avail_ring = q.driver;
                    c.used_ring = q.device;
                }
                c.event_idx = features & kFeatureEventIdx;
                c.indirect = features & kFeatureIndirectDesc;
                qs.push_back(c);
            }
        }
        if (auto r = dev_->activate(features, std::move(qs), mem_, *this); !r) {
            if (g_guest_warn.allow()) LOG_WARN("%s: activation failed: %s", dev_->name(), r.error().message().c_str());
            needs_reset();
            return;
        }
        active_ = true;
        // Buffers posted before DRIVER_OK are processed now.
        for (auto& q : queues_)
            if (q.enabled) (void)q.notify->write(1);
    }
}

void VirtioPciDevice::set_status(uint8_t s) {
    // FEATURES_OK is accepted only for a subset of what we offered that includes VERSION_1 (spec 3.1.1).
    if ((s & kStatusFeaturesOk) && !(status_ & kStatusFeaturesOk)) {
        bool subset = (driver_features_ & ~offered_) == 0;
        bool version1 = driver_features_ & kFeatureVersion1;
        if (!subset || !version1) {
            if (g_guest_warn.allow())
                LOG_WARN("%s: refusing features 0x%llx (offered 0x%llx)", dev_->name(),
                         static_cast<unsigned long long>(driver_features_), static_cast<unsigned long long>(offered_));
            s &= ~kStatusFeaturesOk;
        }
    }
    if ((s & kStatusDriverOk) && !(s & kStatusFeaturesOk)) s &= ~kStatusDriverOk;  // out of order: ignore DRIVER_OK
    status_ = (status_ & kStatusNeedsReset) | s;
    if (s & kStatusFailed) active_ = false;
    (void)kStatusAcknowledge;
    (void)kStatusDriver;
}

void VirtioPciDevice::reset_locked() {
    active_ = false;
    status_ = 0;
    driver_features_ = 0;
    device_feature_select_ = driver_feature_select_ = 0;
    queue_select_ = 0;
    config_msix_vector_ = kNoVector;
    isr_ = 0;
    for (auto& q : queues_) {
        q.size = q.max_size;
        q.msix_vector = kNoVector;
        q.enabled = false;
        q.desc = q.driver = q.device = 0;
    }
}

void VirtioPciDevice::handle_notify(uint16_t queue) {
    if (queue >= queues_.size()) return;
    (void)queues_[queue].notify->read();
    if (!active_) return;
    dev_->process_queue(queue);
}

void VirtioPciDevice::deliver(uint16_t vector) {
    if (vector == kNoVector) return;  // the driver asked for no interrupt on this event
    if (msix_->trigger(vector) && fire_msi_) fire_msi_(vector);
}

void VirtioPciDevice::signal_queue(uint16_t queue) {
    isr_ |= 1;
    uint16_t vector;
    {
        std::lock_guard lock(mutex_);
        vector = queue < queues_.size() ? queues_[queue].msix_vector : kNoVector;
    }
    deliver(vector);
}

void VirtioPciDevice::signal_config() {
    isr_ |= 2;
    uint16_t vector;
    {
        std::lock_guard lock(mutex_);
        ++config_generation_;
        vector = config_msix_vector_;
    }
    deliver(vector);
}

int VirtioPciDevice::queue_notify_fd(uint16_t queue) {
    return queue < queues_.size() ? queues_[queue].notify->fd() : -1;
}

int VirtioPciDevice::queue_irq_fd(uint16_t queue) {
    uint16_t vector;
    {
        std::lock_guard lock(mutex_);
        vector = queue < queues_.size() ? queues_[queue].msix_vector : kNoVector;
    }
    if (vector == kNoVector || vector >= msix_->size() || !irq_fd_lookup_) return -1;
    return irq_fd_lookup_(vector);
}

void VirtioPciDevice::needs_reset() {
    uint8_t old;
    {
        // Under the lock: set_status() rewrites status_ from its old value.
        std::lock_guard lock(mutex_);
        old = status_.fetch_or(kStatusNeedsReset);
    }
    if (!(old & kStatusNeedsReset)) signal_config();  // spec 2.1.2: tell the driver once
}

}  // namespace kvmkit::virtio
