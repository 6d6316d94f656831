#include "kvm/vm.hpp"

#include <sys/ioctl.h>

#include <cstring>

#include "kvm/uapi.hpp"
#include "kvm/vcpu.hpp"

namespace kvmkit::kvm {

using base::fail_errno;

namespace {
template <typename Arg>
Result<void> vm_ioctl(int fd, unsigned long req, Arg arg, const char* name) {
    int r;
    do {
        r = ::ioctl(fd, req, arg);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return fail_errno(name);
    return base::ok();
}
}  // namespace

int Vm::check_extension(int cap) const {
    int v = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
    return v < 0 ? 0 : v;
}

Result<void> Vm::set_tss_addr(uint64_t addr) {
    return vm_ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr), "KVM_SET_TSS_ADDR");
}

Result<void> Vm::set_identity_map_addr(uint64_t addr) {
    return vm_ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr, "KVM_SET_IDENTITY_MAP_ADDR");
}

Result<void> Vm::create_irqchip() { return vm_ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP"); }

Result<void> Vm::create_pit2(uint32_t flags) {
    kvm_pit_config cfg{};
    cfg.flags = flags;
    return vm_ioctl(fd_.get(), KVM_CREATE_PIT2, &cfg, "KVM_CREATE_PIT2");
}

Result<void> Vm::set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host_addr,
                                        uint32_t flags) {
    kvm_userspace_memory_region r{};
    r.slot = slot;
    r.flags = flags;
    r.guest_phys_addr = guest_phys;
    r.memory_size = size;
    r.userspace_addr = reinterpret_cast<uint64_t>(host_addr);
    return vm_ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &r, "KVM_SET_USER_MEMORY_REGION");
}

Result<void> Vm::irq_line(uint32_t gsi, bool level) {
    kvm_irq_level l{};
    l.irq = gsi;
    l.level = level ? 1 : 0;
    return vm_ioctl(fd_.get(), KVM_IRQ_LINE, &l, "KVM_IRQ_LINE");
}

Result<void> Vm::set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries) {
    std::vector<uint8_t> buf(sizeof(uapi::IrqRoutingHeader) + entries.size() * sizeof(kvm_irq_routing_entry));
    auto* r = reinterpret_cast<uapi::IrqRoutingHeader*>(buf.data());
    r->nr = entries.size();
    std::memcpy(buf.data() + sizeof *r, entries.data(), entries.size() * sizeof(kvm_irq_routing_entry));
    return vm_ioctl(fd_.get(), uapi::kSetGsiRouting, r, "KVM_SET_GSI_ROUTING");
}

Result<void> Vm::irqfd(int eventfd, uint32_t gsi, bool deassign) {
    kvm_irqfd f{};
    f.fd = eventfd;
    f.gsi = gsi;
    f.flags = deassign ? KVM_IRQFD_FLAG_DEASSIGN : 0;
    return vm_ioctl(fd_.get(), KVM_IRQFD, &f, "KVM_IRQFD");
}

Result<void> Vm::ioeventfd(int eventfd, uint64_t addr, uint32_t len, bool pio, bool deassign) {
    kvm_ioeventfd e{};
    e.fd = eventfd;
    e.addr = addr;
    e.len = len;
    e.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0);
    return vm_ioctl(fd_.get(), KVM_IOEVENTFD, &e, "KVM_IOEVENTFD");
}

Result<void> Vm::signal_msi(uint64_t address, uint32_t data) {
    kvm_msi m{};
    m.address_lo = static_cast<uint32_t>(address);
    m.address_hi = static_cast<uint32_t>(address >> 32);
    m.data = data;
    int r = ::ioctl(fd_.get(), KVM_SIGNAL_MSI, &m);
    if (r < 0) return fail_errno("KVM_SIGNAL_MSI");
    return base::ok();
}

Result<void> Vm::enable_cap(uint32_t cap, uint64_t arg0, uint64_t arg1) {
    kvm_enable_cap c{};
    c.cap = cap;
    c.args[0] = arg0;
    c.args[1] = arg1;
    return vm_ioctl(fd_.get(), KVM_ENABLE_CAP, &c, "KVM_ENABLE_CAP");
}

Result<void> Vm::register_coalesced_pio(uint64_t port, uint32_t size) {
    kvm_coalesced_mmio_zone z{};
    z.addr = port;
    z.size = size;
    z.pio = 1;
    return vm_ioctl(fd_.get(), KVM_REGISTER_COALESCED_MMIO, &z, "KVM_REGISTER_COALESCED_MMIO(pio)");
}

Result<void> Vm::set_clock(uint64_t ns) {
    kvm_clock_data c{};
    c.clock = ns;
    return vm_ioctl(fd_.get(), KVM_SET_CLOCK, &c, "KVM_SET_CLOCK");
}

Result<Vcpu> Vm::create_vcpu(int id) {
    int fd = ::ioctl(fd_.get(), KVM_CREATE_VCPU, id);
    if (fd < 0) return fail_errno("KVM_CREATE_VCPU " + std::to_string(id));
    base::UniqueFd owned(fd);
    // SAFETY: the kvm_run page is shared with the kernel; its size comes from KVM_GET_VCPU_MMAP_SIZE.
    auto run = TRY_CTX(base::MmapRegion::shared_fd(fd, vcpu_mmap_size_, 0, true), "map kvm_run");
    return Vcpu(id, std::move(owned), std::move(run));
}

}  // namespace kvmkit::kvm
