// Machine: builds one x86_64 VM from a VmConfig (memory, kernel, ACPI,
// legacy devices, vCPUs), runs a thread per vCPU, and reports why it
// stopped. A reset is reported, not handled here: the caller builds a fresh
// Machine, which is exactly what a reset of real hardware amounts to.
//
// Lock order: Machine::stop_mutex_ and pause_mutex_ are leaves (never held
// together); device locks are leaves.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "arch/x86_64/cpuid.hpp"
#include "arch/x86_64/kernel_loader.hpp"
#include "bus/bus.hpp"
#include "devices/acpi_pm.hpp"
#include "devices/serial_16550.hpp"
#include "kvm/kvm.hpp"
#include "kvm/vcpu.hpp"
#include "kvm/vm.hpp"
#include "memory/guest_memory.hpp"
#include "vmm/config.hpp"
#include "vmm/console.hpp"
#include "virtio/devices/virtio_console.hpp"
#include "vmm/device_manager.hpp"
#include "vmm/exit_counters.hpp"
#include "vmm/host_info.hpp"
#include "vmm/kvm_irq_line.hpp"

namespace kvmkit::vmm {

enum class StopReason { None, Poweroff, Reset, Signal, UserQuit, Error };
const char* stop_reason_name(StopReason r);

// Checks a config against the host before anything is built; clear errors
// for every bad value.
base::Result<void> validate_config(const VmConfig& cfg, const kvm::Kvm& kvm, const HostInfo& host);

class Machine {
public:
    static base::Result<std::unique_ptr<Machine>> create(const VmConfig& cfg, const HostInfo& host, Console& console);
    ~Machine();

    // Starts the vCPUs and blocks until the machine stops.
    StopReason run();
    void request_stop(StopReason reason, const std::string& message = "");
    const std::string& stop_message() const { return stop_message_; }

    // Control (any thread, e.g. the control API). pause() takes every vCPU
    // out of KVM_RUN and parks it, and returns once all are parked; resume()
    // lets them run again. Errors: already paused / not paused / stopping.
    base::Result<void> pause();
    base::Result<void> resume();
    bool paused();
    void press_power_button();  // ACPI fixed power button: PWRBTN_STS + SCI
    const ExitCounters& exit_counters() const { return *exit_counters_; }
    std::vector<DeviceManager::DeviceIo> device_io() { return devices_->io_counters(); }

private:
    Machine(const VmConfig& cfg, Console& console, kvm::Kvm kvm, kvm::Vm vm);
    base::Result<void> build(const HostInfo& host);
    base::Result<void> setup_devices();
    base::Result<void> setup_pci_devices();
    base::Result<void> setup_vcpus(arch::x86_64::CpuProfile profile, const arch::x86_64::LoadedKernel& kernel,
                                   uint64_t boot_info_addr);
    void vcpu_loop(size_t index);
    bool fix_emulation_failure(kvm::Vcpu& vcpu);
    void kick_vcpus();
    void park(size_t index);  // on a vCPU thread, while a pause is requested

    VmConfig cfg_;
    HostInfo host_;
    Console& console_;
    kvm::Kvm kvm_;
    kvm::Vm vm_;
    memory::GuestMemory mem_;
    bus::Bus pio_bus_{"pio"};
    bus::Bus mmio_bus_{"mmio"};
    std::vector<std::unique_ptr<KvmIrqLine>> irq_lines_;
    std::shared_ptr<devices::Serial16550> serial_;
    std::shared_ptr<devices::AcpiPm> acpi_pm_;
    std::unique_ptr<DeviceManager> devices_;
    std::shared_ptr<virtio::VirtioConsole> virtio_console_;
    std::vector<kvm::Vcpu> vcpus_;
    std::vector<std::thread> threads_;
    std::vector<pthread_t> thread_handles_;
    size_t run_size_ = 0;
    bool coalesced_ring_ = false;  // port 0x80 writes are batched, and discarded, in KVM's ring

    std::mutex stop_mutex_;
    std::condition_variable stop_cv_;
    std::atomic<bool> stopping_{false};
    StopReason stop_reason_ = StopReason::None;
    std::string stop_message_;

    std::unique_ptr<ExitCounters> exit_counters_;
    std::mutex pause_mutex_;
    std::condition_variable pause_cv_;
    std::atomic<bool> pause_requested_{false};  // written under pause_mutex_; read by the vCPU loop
    size_t parked_ = 0;                         // guarded by pause_mutex_
    bool started_ = false;                      // vCPU threads and their handles exist; guarded by pause_mutex_
};

}  // namespace kvmkit::vmm
