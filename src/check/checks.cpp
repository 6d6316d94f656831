#include "check/checks.hpp"

#include <linux/kvm.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace kvmkit::check {

namespace {

// clang-format off
constexpr std::array kCapabilities = {
    CapabilitySpec{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", CapabilityKind::Required,
                   "guest RAM in user-space memory (KVM_SET_USER_MEMORY_REGION)", ""},
    CapabilitySpec{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", CapabilityKind::Required,
                   "in-kernel PIC, IOAPIC and local APICs (KVM_CREATE_IRQCHIP)", ""},
    CapabilitySpec{KVM_CAP_PIT2, "KVM_CAP_PIT2", CapabilityKind::Required,
                   "in-kernel i8254 timer (KVM_CREATE_PIT2)", ""},
    CapabilitySpec{KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", CapabilityKind::Required,
                   "GSI routing to the IOAPIC and MSI (KVM_SET_GSI_ROUTING)", ""},
    CapabilitySpec{KVM_CAP_IRQFD, "KVM_CAP_IRQFD", CapabilityKind::Required,
                   "device interrupts through eventfds (KVM_IRQFD)", ""},
    CapabilitySpec{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", CapabilityKind::Required,
                   "device notifications through eventfds (KVM_IOEVENTFD)", ""},
    CapabilitySpec{KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI", CapabilityKind::Required,
                   "MSI injection (KVM_SIGNAL_MSI)", ""},
    CapabilitySpec{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", CapabilityKind::Required,
                   "race-free vCPU stop (kvm_run.immediate_exit)", ""},
    CapabilitySpec{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", CapabilityKind::Required,
                   "real-mode support area (KVM_SET_TSS_ADDR)", ""},
    CapabilitySpec{KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR", CapabilityKind::Required,
                   "placing the identity-map page (KVM_SET_IDENTITY_MAP_ADDR)", ""},
    CapabilitySpec{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", CapabilityKind::Required,
                   "guest CPUID (KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2)", ""},
    CapabilitySpec{KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", CapabilityKind::Required,
                   "SMP start-up state of vCPUs (KVM_SET_MP_STATE)", ""},
    CapabilitySpec{KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS", CapabilityKind::Required,
                   "pending exceptions and interrupts (KVM_SET_VCPU_EVENTS)", ""},
    CapabilitySpec{KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK", CapabilityKind::Recommended,
                   "setting the guest clock (KVM_SET_CLOCK)",
                   "the guest's kvmclock starts from the host's boot time"},
    CapabilitySpec{KVM_CAP_COALESCED_MMIO, "KVM_CAP_COALESCED_MMIO", CapabilityKind::Recommended,
                   "batched MMIO writes (fewer exits)", "every MMIO write exits to user space"},
    CapabilitySpec{KVM_CAP_COALESCED_PIO, "KVM_CAP_COALESCED_PIO", CapabilityKind::Recommended,
                   "batched port writes (fewer exits)", "every port write exits to user space"},
    CapabilitySpec{KVM_CAP_TSC_DEADLINE_TIMER, "KVM_CAP_TSC_DEADLINE_TIMER", CapabilityKind::Recommended,
                   "TSC-deadline mode of the guest's local APIC timer",
                   "guests fall back to the slower periodic/one-shot APIC timer"},
    CapabilitySpec{KVM_CAP_X2APIC_API, "KVM_CAP_X2APIC_API", CapabilityKind::Recommended,
                   "32-bit x2APIC IDs (more than 255 vCPUs)", "VMs are limited to 255 vCPUs"},
    CapabilitySpec{KVM_CAP_IRQFD_RESAMPLE, "KVM_CAP_IRQFD_RESAMPLE", CapabilityKind::Recommended,
                   "level-triggered interrupts through eventfds (PCI INTx)",
                   "level-triggered interrupts need an exit per acknowledgement"},
    CapabilitySpec{KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM", CapabilityKind::Recommended,
                   "read-only memory slots (ROM, flash)", "ROM is writable by the guest"},
    CapabilitySpec{KVM_CAP_USER_NMI, "KVM_CAP_USER_NMI", CapabilityKind::Recommended,
                   "NMI injection (KVM_NMI)", "the VMM cannot send an NMI to a hung guest"},
    CapabilitySpec{KVM_CAP_NR_VCPUS, "KVM_CAP_NR_VCPUS", CapabilityKind::Count,
                   "recommended vCPUs per VM", ""},
    CapabilitySpec{KVM_CAP_MAX_VCPUS, "KVM_CAP_MAX_VCPUS", CapabilityKind::Count,
                   "maximum vCPUs per VM", ""},
    CapabilitySpec{KVM_CAP_NR_MEMSLOTS, "KVM_CAP_NR_MEMSLOTS", CapabilityKind::Count,
                   "memory slots per VM", ""},
};
// clang-format on

constexpr const char* kModuleKvm = "kvm";
constexpr const char* kModuleIntel = "kvm_intel";
constexpr const char* kModuleAmd = "kvm_amd";
constexpr const char* kModulePvm = "kvm_pvm";

constexpr const char* kPvmExplanation =
    "PVM (pagetable-based VM, kvm_pvm): guests not built for PVM run under instruction emulation, ~1000x slower; "
    "kvmkit hides unsupported CPU features";

CheckResult pass(std::string name, std::string detail) {
    return {std::move(name), Status::Pass, std::move(detail), {}};
}
CheckResult warn(std::string name, std::string detail, std::string hint) {
    return {std::move(name), Status::Warn, std::move(detail), std::move(hint)};
}
CheckResult failure(std::string name, std::string detail, std::string hint) {
    return {std::move(name), Status::Fail, std::move(detail), std::move(hint)};
}

// "EBUSY (Device or resource busy)".
std::string describe_errno(int err) {
    const char* name = ::strerrorname_np(err);
    std::string text = name ? name : "errno " + std::to_string(err);
    return text + " (" + std::strerror(err) + ")";
}

std::string octal_mode(uint32_t mode) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
    return buf;
}

std::string owner_text(const DeviceFacts& d) {
    std::string user = d.owner_name.empty() ? std::to_string(d.owner_uid) : d.owner_name;
    std::string group = d.group_name.empty() ? std::to_string(d.owner_gid) : d.group_name;
    return user + ":" + group;
}

std::string user_text(const UserFacts& u) {
    std::string uid = "uid " + std::to_string(u.uid);
    return u.name.empty() ? uid : "user '" + u.name + "' (" + uid + ")";
}

std::string module_state_text(ModuleState s) {
    switch (s) {
        case ModuleState::Loaded: return "loaded";
        case ModuleState::BuiltIn: return "built in";
        case ModuleState::Absent: break;
    }
    return "absent";
}

// The backend modules present, in a fixed order.
std::vector<const char*> backend_modules(const HostFacts& f) {
    std::vector<const char*> out;
    for (const char* m : {kModuleIntel, kModuleAmd, kModulePvm})
        if (f.has_module(m)) out.push_back(m);
    return out;
}

bool kvm_works(const HostFacts& f) { return f.kvm.opened() && f.create_vm.ok(); }

bool is_pvm_host(const HostFacts& f) {
    auto b = backend_modules(f);
    return b.size() == 1 && std::strcmp(b[0], kModulePvm) == 0;
}

// How to get KVM going on this host, judged from the CPU.
std::string load_hint(const HostFacts& f) {
    if (f.has_cpu_flag("vmx"))
        return "load KVM for Intel: sudo modprobe kvm_intel; if that fails ('Operation not supported', see dmesg), "
               "enable VT-x (Intel Virtualization Technology) in the BIOS/UEFI setup";
    if (f.has_cpu_flag("svm"))
        return "load KVM for AMD: sudo modprobe kvm_amd; if that fails ('Operation not supported', see dmesg), "
               "enable AMD-V (SVM Mode) in the BIOS/UEFI setup";
    if (f.has_cpu_flag("hypervisor"))
        return "this host is itself a virtual machine without nested virtualization: enable nested VT-x/AMD-V on "
               "the outer hypervisor, or run a kernel with PVM and load it: sudo modprobe kvm_pvm";
    if (f.cpu_vendor == "GenuineIntel")
        return "enable VT-x (Intel Virtualization Technology) in the BIOS/UEFI setup (Linux hides the vmx flag "
               "while firmware disables it), then: sudo modprobe kvm_intel";
    if (f.cpu_vendor == "AuthenticAMD")
        return "enable AMD-V (SVM Mode) in the BIOS/UEFI setup (Linux hides the svm flag while firmware "
               "disables it), then: sudo modprobe kvm_amd";
    return "enable VT-x/AMD-V in the BIOS/UEFI setup, then load KVM: sudo modprobe kvm_intel (Intel) or "
           "sudo modprobe kvm_amd (AMD)";
}

CheckResult check_cpu(const HostFacts& f) {
    const char* name = "CPU virtualization";
    if (!f.cpu_flags) return warn(name, "cannot read /proc/cpuinfo", "is /proc mounted?");
    if (f.has_cpu_flag("vmx")) return pass(name, "vmx flag: Intel VT-x");
    if (f.has_cpu_flag("svm")) return pass(name, "svm flag: AMD-V");
    if (f.has_module(kModulePvm))
        return pass(name, "no vmx/svm flag; not needed: PVM (kvm_pvm) runs guests without VT-x/AMD-V");
    std::string detail = f.has_cpu_flag("hypervisor")
                             ? "no vmx/svm flag: this host is a virtual machine without nested virtualization"
                             : "no vmx/svm flag: VT-x/AMD-V is missing or disabled";
    if (kvm_works(f))
        return warn(name, detail + ", yet /dev/kvm works",
                    "the backend serving /dev/kvm could not be identified; see the 'KVM backend' line");
    return failure(name, detail, load_hint(f));
}

CheckResult check_modules(const HostFacts& f) {
    const char* name = "kernel modules";
    std::string listed;
    for (const char* m : {kModuleKvm, kModuleIntel, kModuleAmd, kModulePvm}) {
        if (!f.has_module(m)) continue;
        if (!listed.empty()) listed += ", ";
        listed += std::string(m) + " (" + module_state_text(f.module(m)) + ")";
    }
    bool backend = !backend_modules(f).empty();
    if (f.has_module(kModuleKvm) && backend) return pass(name, listed);

    std::string detail;
    if (listed.empty())
        detail = "none of kvm, kvm_intel, kvm_amd, kvm_pvm is loaded or built in";
    else if (!backend)
        detail = listed + "; no backend module (kvm_intel, kvm_amd or kvm_pvm)";
    else
        detail = listed + "; kvm itself not found";
    if (kvm_works(f))
        return warn(name, detail + ", yet /dev/kvm works",
                    "built-in modules without parameters do not show in /sys/module; nothing to do if VMs run");
    return failure(name, detail, load_hint(f));
}

CheckResult check_backend(const HostFacts& f) {
    const char* name = "KVM backend";
    auto backends = backend_modules(f);
    if (backends.empty()) {
        if (kvm_works(f))
            return warn(name, "unknown: /dev/kvm works but no kvm_intel, kvm_amd or kvm_pvm module was found",
                        "nothing to do if VMs run; guest speed depends on the backend");
        return failure(name, "none: no kvm_intel, kvm_amd or kvm_pvm module", load_hint(f));
    }
    if (backends.size() > 1) {
        std::string list;
        for (const char* b : backends) list += (list.empty() ? "" : ", ") + std::string(b);
        return warn(name, "several backend modules (" + list + "); which one serves /dev/kvm is not visible",
                    "keep only the one you want loaded (sudo modprobe -r <module>)");
    }
    std::string b = backends[0];
    if (b == kModuleIntel) return pass(name, "Intel VT-x (kvm_intel): guests run on hardware virtualization");
    if (b == kModuleAmd) return pass(name, "AMD-V (kvm_amd): guests run on hardware virtualization");
    return pass(name, kPvmExplanation);
}

CheckResult check_kvm_exists(const HostFacts& f) {
    const std::string name = f.kvm.path + " exists";
    if (!f.kvm.exists) {
        if (!backend_modules(f).empty())
            return failure(name, "missing, although KVM is loaded",
                           "udev did not create it; create it by hand: sudo mknod -m 0660 " + f.kvm.path +
                               " c 10 232 && sudo chgrp kvm " + f.kvm.path);
        return failure(name, "missing: KVM is not available", load_hint(f));
    }
    if (!f.kvm.is_char_device)
        return failure(name, "exists but is not a character device",
                       "remove it and let udev recreate it (reload the KVM modules or reboot)");
    return pass(name, "character device " + std::to_string(f.kvm.major) + ":" + std::to_string(f.kvm.minor) +
                          ", mode " + octal_mode(f.kvm.mode) + ", " + owner_text(f.kvm));
}

CheckResult check_kvm_access(const HostFacts& f) {
    const std::string name = f.kvm.path + " access";
    const DeviceFacts& d = f.kvm;
    int err = *d.open_errno;
    if (err == 0) return pass(name, "read/write for " + user_text(f.user));
    if (err == EACCES || err == EPERM) {
        std::string detail = "permission denied for " + user_text(f.user) + "; mode " + octal_mode(d.mode) + ", " +
                             owner_text(d);
        std::string group = d.group_name.empty() ? std::to_string(d.owner_gid) : d.group_name;
        bool group_rw = (d.mode & 060) == 060 && d.owner_gid != 0;
        bool in_group = std::find(f.user.gids.begin(), f.user.gids.end(), d.owner_gid) != f.user.gids.end();
        std::string hint;
        if (!group_rw)
            hint = "run as root, or give group 'kvm' access with a udev rule (KERNEL==\"kvm\", GROUP=\"kvm\", "
                   "MODE=\"0660\" in /etc/udev/rules.d/65-kvm.rules) and join it: sudo usermod -aG kvm $USER, "
                   "then log in again";
        else if (in_group)
            hint = "the device's group '" + group + "' has access and you are in it: an ACL or a security module "
                   "(SELinux, AppArmor, container policy) denies it";
        else if (f.user.listed_in_kvm_group)
            hint = "you are in group '" + group + "' but this session started before you were added: log out and "
                   "in again (or run: newgrp " + group + ")";
        else
            hint = "run as root, or join group '" + group + "': sudo usermod -aG " + group +
                   " $USER, then log in again";
        return failure(name, detail, hint);
    }
    if (err == ENXIO || err == ENODEV)
        return failure(name, "no KVM driver behind the device node: " + describe_errno(err), load_hint(f));
    return failure(name, "open failed: " + describe_errno(err), "see dmesg for KVM errors");
}

CheckResult check_api_version(const HostFacts& f) {
    const char* name = "KVM API version";
    if (!f.api_version.ok())
        return failure(name, "KVM_GET_API_VERSION failed: " + describe_errno(f.api_version.error),
                       "see dmesg for KVM errors");
    if (f.api_version.value != kKvmApiVersion)
        return failure(name,
                       std::to_string(f.api_version.value) + "; kvmkit needs " + std::to_string(kKvmApiVersion),
                       "this kernel's KVM API is incompatible; use a mainline Linux kernel");
    return pass(name, std::to_string(f.api_version.value));
}

CheckResult check_create_vm(const HostFacts& f) {
    const char* name = "KVM_CREATE_VM";
    int err = f.create_vm.error;
    if (err == 0) return pass(name, "a VM can be created");
    std::string detail = "failed: " + describe_errno(err);
    switch (err) {
        case EBUSY:
            return failure(name, detail + ": another hypervisor holds VT-x/AMD-V",
                           "quit the other hypervisor (VirtualBox, VMware, another VMM) and try again");
        case ENOMEM:
            return failure(name, detail, "the host is short of memory; free some and try again");
        case EPERM:
        case EACCES:
            return failure(name, detail,
                           "a security policy (seccomp, SELinux, AppArmor, container runtime) forbids creating VMs");
        default:
            return failure(name, detail, "see dmesg for KVM errors");
    }
}

CheckResult check_kernel(const HostFacts& f) {
    const char* name = "kernel version";
    if (f.kernel_release.empty()) return warn(name, "unknown (uname failed)", "is this Linux?");
    auto v = parse_kernel_version(f.kernel_release);
    if (!v) return warn(name, f.kernel_release + ": cannot parse", "kvmkit needs Linux 2.6.20 or later");
    if (*v < kMinimumKernel)
        return failure(name, f.kernel_release + ": older than 2.6.20, the first with KVM",
                       "upgrade the kernel (Linux 5.10 or later has every capability kvmkit uses)");
    return pass(name, f.kernel_release + " (>= 2.6.20)");
}

CheckResult check_capability(const HostFacts& f, const CapabilitySpec& spec) {
    int v = f.capability(spec.name);
    if (v > 0) return pass(spec.name, std::string("supported: ") + spec.use);
    std::string hint = is_pvm_host(f) ? "the PVM backend does not offer it; hardware KVM (kvm_intel, kvm_amd) does"
                                      : "use a newer kernel: Linux 5.10 or later has every capability kvmkit uses";
    if (spec.kind == CapabilityKind::Required)
        return failure(spec.name, std::string("missing: kvmkit needs it for ") + spec.use, hint);
    return warn(spec.name, std::string("missing (optional): ") + spec.without, hint);
}

CheckResult check_vcpus(const HostFacts& f) {
    // Documentation/virt/kvm/api.rst, KVM_CREATE_VCPU: without KVM_CAP_NR_VCPUS
    // assume 4; without KVM_CAP_MAX_VCPUS the maximum is KVM_CAP_NR_VCPUS.
    int nr = f.capability("KVM_CAP_NR_VCPUS");
    int max = f.capability("KVM_CAP_MAX_VCPUS");
    std::string detail;
    if (nr <= 0) {
        nr = 4;
        detail = "recommended " + std::to_string(nr) + " (KVM_CAP_NR_VCPUS absent, API default)";
    } else {
        detail = "recommended " + std::to_string(nr);
    }
    if (max <= 0) max = nr;
    return pass("max vCPUs", detail + ", maximum " + std::to_string(max) + " per VM");
}

CheckResult check_memslots(const HostFacts& f) {
    int n = f.capability("KVM_CAP_NR_MEMSLOTS");
    if (n <= 0) return pass("memory slots", "not reported (KVM_CAP_NR_MEMSLOTS absent; old kernels have 32)");
    return pass("memory slots", std::to_string(n) + " per VM");
}

CheckResult check_tun(const HostFacts& f) {
    const DeviceFacts& d = f.tun;
    const std::string& name = d.path;
    if (!d.exists)
        return warn(name, "missing: no TAP networking", "load the TUN/TAP driver: sudo modprobe tun");
    if (!d.is_char_device) return warn(name, "exists but is not a character device", "sudo modprobe tun; reboot");
    if (d.opened()) return pass(name, "read/write OK: TAP networking available");
    int err = d.open_errno.value_or(0);
    if (err == EACCES || err == EPERM)
        return warn(name, "no access for " + user_text(f.user) + "; mode " + octal_mode(d.mode) + ", " + owner_text(d),
                    "TAP networking needs access to " + d.path + " (usually mode 0666) and CAP_NET_ADMIN, or a "
                    "persistent tap device owned by you (ip tuntap add mode tap user $USER)");
    return warn(name, "cannot open: " + describe_errno(err), "sudo modprobe tun; see dmesg");
}

CheckResult check_vhost_net(const HostFacts& f) {
    const DeviceFacts& d = f.vhost_net;
    const std::string& name = d.path;
    if (!d.exists)
        return warn(name, "missing: virtio-net falls back to the slower user-space datapath",
                    "load the in-kernel virtio-net backend: sudo modprobe vhost_net");
    if (!d.is_char_device) return warn(name, "exists but is not a character device", "sudo modprobe vhost_net; reboot");
    if (d.opened()) return pass(name, "read/write OK: in-kernel virtio-net datapath available");
    int err = d.open_errno.value_or(0);
    if (err == EACCES || err == EPERM)
        return warn(name, "no access for " + user_text(f.user) + "; mode " + octal_mode(d.mode) + ", " + owner_text(d) +
                              "; virtio-net falls back to the user-space datapath",
                    "run as root, or grant group 'kvm' access with a udev rule (KERNEL==\"vhost-net\", "
                    "GROUP=\"kvm\", MODE=\"0660\")");
    return warn(name, "cannot open: " + describe_errno(err), "sudo modprobe vhost_net; see dmesg");
}

}  // namespace

const char* to_string(Status s) {
    switch (s) {
        case Status::Pass: return "PASS";
        case Status::Warn: return "WARN";
        case Status::Fail: return "FAIL";
    }
    return "FAIL";
}

std::span<const CapabilitySpec> capability_specs() { return kCapabilities; }

std::vector<CheckResult> evaluate_host(const HostFacts& f) {
    std::vector<CheckResult> out;
    out.push_back(check_cpu(f));
    out.push_back(check_modules(f));
    out.push_back(check_backend(f));
    out.push_back(check_kvm_exists(f));
    if (f.kvm.exists && f.kvm.is_char_device && f.kvm.open_errno) out.push_back(check_kvm_access(f));
    if (f.kvm.opened()) {
        if (f.api_version.attempted) out.push_back(check_api_version(f));
        if (f.create_vm.attempted) out.push_back(check_create_vm(f));
    }
    out.push_back(check_kernel(f));
    if (f.kvm.opened()) {
        for (const auto& spec : kCapabilities)
            if (spec.kind != CapabilityKind::Count) out.push_back(check_capability(f, spec));
        out.push_back(check_vcpus(f));
        out.push_back(check_memslots(f));
    }
    out.push_back(check_tun(f));
    out.push_back(check_vhost_net(f));
    return out;
}

Status overall_status(const std::vector<CheckResult>& results) {
    Status worst = Status::Pass;
    for (const auto& r : results)
        if (static_cast<int>(r.status) > static_cast<int>(worst)) worst = r.status;
    return worst;
}

int exit_code(const std::vector<CheckResult>& results) {
    return overall_status(results) == Status::Fail ? 1 : 0;
}

std::optional<KernelVersion> parse_kernel_version(std::string_view release) {
    int parts[3] = {0, 0, 0};
    const char* p = release.data();
    const char* end = release.data() + release.size();
    for (int i = 0; i < 3; ++i) {
        auto [next, ec] = std::from_chars(p, end, parts[i]);
        if (ec != std::errc()) {
            if (i < 2) return std::nullopt;  // "X.Y" at least
            break;
        }
        p = next;
        if (i < 2) {
            if (p == end || *p != '.') {
                if (i == 0) return std::nullopt;
                break;
            }
            ++p;
        }
    }
    return KernelVersion{parts[0], parts[1], parts[2]};
}

}  // namespace kvmkit::check
