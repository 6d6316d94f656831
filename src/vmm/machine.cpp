#include "vmm/machine.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <latch>

#include "arch/x86_64/acpi.hpp"
#include "arch/x86_64/boot_setup.hpp"
#include "arch/x86_64/cpu_setup.hpp"
#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/layout.hpp"
#include "base/file.hpp"
#include "base/log.hpp"
#include "devices/cmos_rtc.hpp"
#include "devices/i8042.hpp"
#include "virtio/devices/virtio_blk.hpp"
#include "virtio/devices/virtio_console.hpp"
#include "virtio/devices/virtio_net.hpp"
#include "virtio/devices/virtio_rng.hpp"
#include "vmm/exit_dispatch.hpp"

namespace kvmkit::vmm {

using base::fail;
using base::Result;
namespace x86 = arch::x86_64;
namespace layout = arch::x86_64::layout;

namespace {
// The signal that knocks a vCPU thread out of KVM_RUN; its handler does nothing.
constexpr int kKickSignal = SIGUSR1;
constexpr uint32_t kMaxCpusXapic = 254;  // 8-bit APIC IDs in the MADT, 0xff is broadcast

void install_kick_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = [](int) {};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
        sigaction(kKickSignal, &sa, nullptr);
    });
}

std::string gib(uint64_t bytes) {
    char b[32];
    snprintf(b, sizeof b, "%.1f GiB", bytes / double(1ull << 30));
    return b;
}

std::string hex(uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

// A sink whose output is just dropped (port 0x80 POST codes and the like).
class NullDevice : public bus::BusDevice {
public:
    explicit NullDevice(const char* name) : name_(name) {}
    const char* name() const override { return name_; }
    void read(uint64_t, std::span<uint8_t> d) override { std::memset(d.data(), 0, d.size()); }
    void write(uint64_t, std::span<const uint8_t>) override {}

private:
    const char* name_;
};

const char* cpu_mode(const kvm_sregs& s) {
    if ((s.efer & (1 << 10)) && s.cs.l) return "64-bit";
    if (s.cr0 & 1) return s.cs.db ? "32-bit protected" : "16-bit protected";
    return "real";
}
}  // namespace

const char* stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::None: return "running";
        case StopReason::Poweroff: return "poweroff";
        case StopReason::Reset: return "reset";
        case StopReason::Signal: return "signal";
        case StopReason::UserQuit: return "quit";
        case StopReason::Error: return "error";
    }
    return "?";
}

Result<void> validate_config(const VmConfig& cfg, const kvm::Kvm& kvm, const HostInfo& host) {
    if (cfg.kernel.empty()) return fail("no kernel given (--kernel FILE)");
    if (cfg.memory < layout::kMinMemory)
        return fail("--memory " + std::to_string(cfg.memory >> 20) + "M is too small (at least " +
                    std::to_string(layout::kMinMemory >> 20) + "M)");
    if (host.mem_total && cfg.memory > host.mem_total)
        return fail("--memory " + gib(cfg.memory) + " is more than the host has (" + gib(host.mem_total) + ")");
    if (cfg.cpus == 0) return fail("--cpus must be at least 1");
    uint32_t max_vcpus = kvm.check_extension(KVM_CAP_MAX_VCPUS);
    if (!max_vcpus) max_vcpus = kvm.check_extension(KVM_CAP_NR_VCPUS);
    if (!max_vcpus) max_vcpus = 4;
    max_vcpus = std::min(max_vcpus, kMaxCpusXapic);
    if (cfg.cpus > max_vcpus)
        return fail("--cpus " + std::to_string(cfg.cpus) + " is above the limit of " + std::to_string(max_vcpus));
    return base::ok();
}

Machine::Machine(const VmConfig& cfg, Console& console, kvm::Kvm kvm, kvm::Vm vm)
    : cfg_(cfg), console_(console), kvm_(std::move(kvm)), vm_(std::move(vm)) {}

Machine::~Machine() {
    request_stop(StopReason::Error, "machine destroyed");
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    console_.attach(nullptr);
    if (devices_) devices_->stop();
}

Result<std::unique_ptr<Machine>> Machine::create(const VmConfig& cfg, const HostInfo& host, Console& console) {
    auto kvm = TRY(kvm::Kvm::open());
    int api = TRY(kvm.get_api_version());
    if (api != KVM_API_VERSION)
        return fail("KVM API version " + std::to_string(api) + ", expected " + std::to_string(KVM_API_VERSION));
    TRY(validate_config(cfg, kvm, host));
    auto vm = TRY(kvm.create_vm());
    std::unique_ptr<Machine> m(new Machine(cfg, console, std::move(kvm), std::move(vm)));
    TRY(m->build(host));
    return m;
}

Result<void> Machine::build(const HostInfo& host) {
    host_ = host;
    install_kick_handler();
    run_size_ = TRY(kvm_.get_vcpu_mmap_size());

    // Intel hosts need these pages for real-mode emulation; harmless elsewhere.
    TRY(vm_.set_identity_map_addr(layout::kIdentityMapPageAddr));
    TRY(vm_.set_tss_addr(layout::kTssAddr));
    TRY_CTX(vm_.create_irqchip(), "in-kernel irqchip");
    TRY_CTX(vm_.create_pit2(KVM_PIT_SPEAKER_DUMMY), "in-kernel PIT");

    uint32_t slot = 0;
    for (const auto& r : x86::ram_ranges(cfg_.memory)) {
        TRY_CTX(mem_.add_anonymous(r.base, r.size), "allocate guest memory (" + gib(r.size) + ")");
        auto span = mem_.host_span(r.base, r.size);
        TRY(vm_.set_user_memory_region(slot++, r.base, r.size, span.data()));
    }

    auto image = TRY_CTX(base::read_file(cfg_.kernel), "kernel");
    auto kernel = TRY_CTX(x86::load_kernel(mem_, image), "kernel '" + cfg_.kernel + "'");
    std::vector<uint8_t> initrd;
    if (!cfg_.initrd.empty()) initrd = TRY_CTX(base::read_file(cfg_.initrd), "initrd");

    auto profile = cfg_.cpu_profile.value_or(host.pvm ? x86::CpuProfile::Emulated : x86::CpuProfile::Host);
    std::string cmdline = cfg_.cmdline;
    if (kernel.is_linux) {
        std::string extra = x86::linux_cmdline_for_profile(profile);
        if (!extra.empty()) cmdline += (cmdline.empty() ? "" : " ") + extra;
    }

    uint64_t rsdp = TRY(x86::write_acpi_tables(mem_, cfg_.cpus, cfg_.memory));
    x86::BootInputs in{cmdline, initrd, cfg_.memory, rsdp};
    auto placed = TRY(x86::write_boot_info(mem_, kernel, in));
    TRY(x86::write_gdt_and_page_tables(mem_));
    LOG_INFO("kernel %s, entry %s, initrd %s+%s, %u vCPU(s), %s, CPU profile %s", x86::boot_protocol_name(kernel.protocol),
             hex(kernel.entry).c_str(), hex(placed.initrd_addr).c_str(), hex(placed.initrd_size).c_str(), cfg_.cpus,
             gib(cfg_.memory).c_str(), x86::cpu_profile_name(profile));

    TRY(setup_devices());
    TRY(setup_pci_devices());
    TRY(setup_vcpus(profile, kernel, placed.boot_info_addr));
    return base::ok();
}

Result<void> Machine::setup_devices() {
    auto irq = [this](uint32_t gsi) -> bus::IrqLine& {
        irq_lines_.push_back(std::make_unique<KvmIrqLine>(vm_, gsi));
        return *irq_lines_.back();
    };
    serial_ = std::make_shared<devices::Serial16550>(
        irq(layout::kCom1Irq), [this](std::span<const uint8_t> b) { console_.write_output(b); });
    TRY(pio_bus_.insert({layout::kCom1Port, 8}, serial_));
    console_.attach(serial_.get());

    TRY(pio_bus_.insert({layout::kRtcPort, 2}, std::make_shared<devices::CmosRtc>()));
    TRY(pio_bus_.insert({layout::kI8042DataPort, 5}, std::make_shared<devices::I8042>([this] {
                             request_stop(StopReason::Reset, "i8042 reset");
                         })));
    acpi_pm_ = std::make_shared<devices::AcpiPm>(
        irq(layout::kSciIrq), layout::kSleepTypeS5, layout::kResetValue,
        devices::AcpiPm::Actions{[this] { request_stop(StopReason::Poweroff, "ACPI S5"); },
                                 [this] { request_stop(StopReason::Reset, "ACPI reset register"); }});
    TRY(pio_bus_.insert({layout::kPm1aEventPort, devices::AcpiPm::kRangeSize}, acpi_pm_));
    TRY(pio_bus_.insert({layout::kPostPort, 1}, std::make_shared<NullDevice>("post-port")));
    // Linux writes port 0x80 as an I/O delay (outb_p); batching those writes
    // in KVM's coalesced ring spares a full exit (~14 us on PVM) each.
    if (kvm_.check_extension(KVM_CAP_COALESCED_PIO) && vm_.register_coalesced_pio(layout::kPostPort, 1))
        coalesced_ring_ = true;
    return base::ok();
}

Result<void> Machine::setup_pci_devices() {
    devices_ = std::make_unique<DeviceManager>(vm_, pio_bus_, mmio_bus_, mem_, cfg_.memory);
    TRY(devices_->init());
    for (size_t i = 0; i < cfg_.disks.size(); ++i) {
        auto image = TRY(virtio::DiskImage::open(cfg_.disks[i]));
        std::string serial = "kvmkit-vd" + std::string(1, static_cast<char>('a' + i % 26));
        TRY(devices_->add_virtio(std::make_shared<virtio::VirtioBlk>(std::move(image), serial, devices_->loop())));
    }
    for (size_t i = 0; i < cfg_.nets.size(); ++i) {
        auto nic = TRY_CTX(virtio::VirtioNet::create(cfg_.nets[i], cfg_.name, i, *devices_->loop()),
                           "--net " + net::format_net_option(cfg_.nets[i]));
        TRY(devices_->add_virtio(std::move(nic)));
    }
    if (cfg_.rng) TRY(devices_->add_virtio(std::make_shared<virtio::VirtioRng>()));
    if (cfg_.virtio_console) {
        virtio_console_ = std::make_shared<virtio::VirtioConsole>(
            [this](std::span<const uint8_t> b) { console_.write_output(b); });
        TRY(devices_->add_virtio(virtio_console_));
        console_.attach(virtio_console_.get());
    }
    return base::ok();
}

Result<void> Machine::setup_vcpus(x86::CpuProfile profile, const x86::LoadedKernel& kernel, uint64_t boot_info_addr) {
    auto supported = TRY(kvm_.get_supported_cpuid());
    for (uint32_t i = 0; i < cfg_.cpus; ++i) {
        auto vcpu = TRY(vm_.create_vcpu(static_cast<int>(i)));
        auto cpuid = supported;
        x86::customize_cpuid(cpuid, profile, i, cfg_.cpus);
        TRY_CTX(vcpu.set_cpuid2(cpuid), "vCPU " + std::to_string(i));
        if (i == 0) {
            auto sregs = TRY(vcpu.get_sregs());
            x86::entry_sregs(kernel.protocol, sregs);
            TRY(vcpu.set_sregs(sregs));
            TRY(vcpu.set_regs(x86::entry_regs(kernel.protocol, kernel.entry, boot_info_addr)));
        }
        // Other vCPUs wait in KVM for INIT/SIPI from the guest (in-kernel LAPIC).
        vcpus_.push_back(std::move(vcpu));
    }
    return base::ok();
}

StopReason Machine::run() {
    // vCPU threads must not take the process's termination signals: the
    // caller's signal thread turns them into request_stop().
    // The vCPUs start together once every handle is recorded, so a kick never reads a half-filled table.
    std::latch all_started(1);
    thread_handles_.resize(vcpus_.size());
    for (size_t i = 0; i < vcpus_.size(); ++i) {
        threads_.emplace_back([this, i, &all_started] {
            all_started.wait();
            vcpu_loop(i);
        });
        thread_handles_[i] = threads_.back().native_handle();
    }
    all_started.count_down();
    std::unique_lock lock(stop_mutex_);
    stop_cv_.wait(lock, [this] { return stop_reason_ != StopReason::None; });
    lock.unlock();
    kick_vcpus();
    for (auto& t : threads_) t.join();
    threads_.clear();
    return stop_reason_;
}

void Machine::request_stop(StopReason reason, const std::string& message) {
    {
        std::lock_guard lock(stop_mutex_);
        if (stop_reason_ != StopReason::None) return;  // the first reason wins
        stop_reason_ = reason;
        stop_message_ = message;
        stopping_ = true;
    }
    stop_cv_.notify_all();
}

void Machine::kick_vcpus() {
    for (size_t i = 0; i < vcpus_.size(); ++i) {
        vcpus_[i].set_immediate_exit(true);
        if (i < thread_handles_.size() && thread_handles_[i]) pthread_kill(thread_handles_[i], kKickSignal);
    }
}

void Machine::vcpu_loop(size_t index) {
    auto& vcpu = vcpus_[index];
    Peripherals periph{pio_bus_, mmio_bus_};
    const long page_size = sysconf(_SC_PAGESIZE);
    while (!stopping_) {
        if (auto r = vcpu.run(); !r) {
            request_stop(StopReason::Error, "vCPU " + std::to_string(index) + ": " + r.error().message());
            break;
        }
        if (coalesced_ring_) vcpu.discard_coalesced_ring(page_size);
        auto action = handle_exit(periph, *vcpu.run_struct(), run_size_);
        switch (action.kind) {
            case ExitAction::Kind::Continue: break;
            case ExitAction::Kind::Poweroff: request_stop(StopReason::Poweroff, action.message); break;
            case ExitAction::Kind::Reset: request_stop(StopReason::Reset, action.message); break;
            case ExitAction::Kind::Fatal:
                request_stop(StopReason::Error, "vCPU " + std::to_string(index) + ": " + action.message);
                break;
            case ExitAction::Kind::EmulationFailure:
                if (!fix_emulation_failure(vcpu)) return;
                break;
        }
    }
}

bool Machine::fix_emulation_failure(kvm::Vcpu& vcpu) {
    auto* run = vcpu.run_struct();
    auto regs = vcpu.get_regs();
    auto sregs = vcpu.get_sregs();
    if (!regs || !sregs) {
        request_stop(StopReason::Error, "vCPU " + std::to_string(vcpu.id()) + ": emulation failure (registers unreadable)");
        return false;
    }
    // The instruction bytes: from KVM when it provides them, else read through the guest's page tables.
    uint8_t bytes[15] = {};
    size_t nbytes = 0;
    if (run->emulation_failure.ndata >= 3 &&
        (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
        nbytes = std::min<size_t>(run->emulation_failure.insn_size, sizeof bytes);
        std::memcpy(bytes, run->emulation_failure.insn_bytes, nbytes);
    } else if (auto t = vcpu.translate(sregs->cs.base + regs->rip); t && t->valid) {
        for (; nbytes < sizeof bytes; ++nbytes) {
            auto b = mem_.read_obj<uint8_t>(t->physical_address + nbytes);
            if (!b) break;
            bytes[nbytes] = *b;
        }
    }
    auto fix = decide_emulation_fix({bytes, nbytes});
    if (fix.kind == EmulationFix::Kind::Skip || fix.kind == EmulationFix::Kind::DeliverBreakpoint) {
        regs->rip += fix.length;
        bool ok = static_cast<bool>(vcpu.set_regs(*regs));
        if (ok && fix.kind == EmulationFix::Kind::DeliverBreakpoint) {
            auto ev = vcpu.get_vcpu_events();
            ok = static_cast<bool>(ev);
            if (ok) {
                ev->exception.injected = 1;
                ev->exception.nr = 3;  // #BP
                ev->exception.has_error_code = 0;
                ev->flags = 0;
                ok = static_cast<bool>(vcpu.set_vcpu_events(*ev));
            }
        }
        if (ok) return true;
    }
    std::string hexbytes;
    for (size_t i = 0; i < nbytes; ++i) {
        char b[4];
        snprintf(b, sizeof b, "%02x ", bytes[i]);
        hexbytes += b;
    }
    if (!hexbytes.empty()) hexbytes.pop_back();
    std::string msg = "vCPU " + std::to_string(vcpu.id()) + ": KVM could not emulate the instruction at RIP " +
                      hex(regs->rip) + " (" + cpu_mode(*sregs) + " mode, CPL " + std::to_string(sregs->cs.dpl) +
                      ", bytes: " + (hexbytes.empty() ? "unreadable" : hexbytes) + ")";
    if (host_.pvm)
        msg += "; hint: /dev/kvm is PVM, which emulates guests that are not PVM-enabled and lacks some instructions: "
               "use a PVM-enabled guest kernel, or a narrower CPU profile (--cpu minimal)";
    request_stop(StopReason::Error, msg);
    return false;
}

}  // namespace kvmkit::vmm
