#include "kvm/kvm.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cstring>

#include "kvm/uapi.hpp"
#include "kvm/vm.hpp"

namespace kvmkit::kvm {

using base::fail;
using base::fail_errno;

kvm_cpuid_entry2* CpuidTable::find(uint32_t function, uint32_t index) {
    for (auto& e : entries) {
        bool indexed = e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        if (e.function == function && (!indexed || e.index == index)) return &e;
    }
    return nullptr;
}

const kvm_cpuid_entry2* CpuidTable::find(uint32_t function, uint32_t index) const {
    return const_cast<CpuidTable*>(this)->find(function, index);
}

Result<Kvm> Kvm::open(const char* path) {
    int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        std::string hint = e == ENOENT ? " (KVM is not available; run 'kvmkit check')"
                           : e == EACCES ? " (no permission; run as root or join the kvm group; see 'kvmkit check')"
                                         : " (see 'kvmkit check')";
        return base::unexpected(base::Error(base::Error::from_errno(std::string("open ") + path, e).message() + hint, e));
    }
    return Kvm(base::UniqueFd(fd));
}

Result<int> Kvm::get_api_version() const {
    int v = ::ioctl(fd_.get(), KVM_GET_API_VERSION, 0);
    if (v < 0) return fail_errno("KVM_GET_API_VERSION");
    return v;
}

int Kvm::check_extension(int cap) const {
    int v = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
    return v < 0 ? 0 : v;
}

Result<int> Kvm::get_vcpu_mmap_size() const {
    int v = ::ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (v < 0) return fail_errno("KVM_GET_VCPU_MMAP_SIZE");
    return v;
}

Result<CpuidTable> Kvm::get_supported_cpuid() const {
    // KVM reports E2BIG until the buffer is large enough.
    for (uint32_t n = 64; n <= 4096; n *= 2) {
        std::vector<uint8_t> buf(sizeof(uapi::Cpuid2Header) + n * sizeof(kvm_cpuid_entry2));
        auto* c = reinterpret_cast<uapi::Cpuid2Header*>(buf.data());
        c->nent = n;
        if (::ioctl(fd_.get(), uapi::kGetSupportedCpuid, c) == 0) {
            CpuidTable t;
            t.entries.resize(c->nent);
            std::memcpy(t.entries.data(), buf.data() + sizeof *c, c->nent * sizeof(kvm_cpuid_entry2));
            return t;
        }
        if (errno != E2BIG) return fail_errno("KVM_GET_SUPPORTED_CPUID");
    }
    return fail("KVM_GET_SUPPORTED_CPUID: too many entries");
}

Result<std::vector<uint32_t>> Kvm::get_msr_index_list() const {
    uapi::MsrListHeader probe{0};
    if (::ioctl(fd_.get(), uapi::kGetMsrIndexList, &probe) < 0 && errno != E2BIG)
        return fail_errno("KVM_GET_MSR_INDEX_LIST");
    std::vector<uint8_t> buf(sizeof(uapi::MsrListHeader) + probe.nmsrs * sizeof(uint32_t));
    auto* l = reinterpret_cast<uapi::MsrListHeader*>(buf.data());
    l->nmsrs = probe.nmsrs;
    if (::ioctl(fd_.get(), uapi::kGetMsrIndexList, l) < 0) return fail_errno("KVM_GET_MSR_INDEX_LIST");
    std::vector<uint32_t> out(l->nmsrs);
    std::memcpy(out.data(), buf.data() + sizeof *l, out.size() * sizeof(uint32_t));
    return out;
}

Result<Vm> Kvm::create_vm() const {
    int mmap_size = TRY(get_vcpu_mmap_size());
    int fd;
    do {
        fd = ::ioctl(fd_.get(), KVM_CREATE_VM, 0);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == EBUSY)
            return base::fail_errno("KVM_CREATE_VM (another hypervisor may hold VT-x/AMD-V)");
        return fail_errno("KVM_CREATE_VM");
    }
    return Vm(base::UniqueFd(fd), mmap_size);
}

}  // namespace kvmkit::kvm
