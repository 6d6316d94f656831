// Variable-length KVM ioctl structures, declared for C++.
//
// Debian 12's UAPI headers (linux-libc-dev 6.1) declare flexible arrays with
// __DECLARE_FLEX_ARRAY, whose empty struct has size 1 in C++ (0 in C). That
// shifts the arrays and changes the ioctl numbers that encode the struct size
// (KVM_GET_SUPPORTED_CPUID comes out as 0xc00cae05 instead of 0xc008ae05, and
// the kernel answers EINVAL). So kvmkit uses these fixed-size headers, lays out
// the trailing entries itself, and defines the affected ioctl numbers here.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace kvmkit::kvm::uapi {

struct Cpuid2Header {
    uint32_t nent;
    uint32_t padding;
};
struct MsrsHeader {
    uint32_t nmsrs;
    uint32_t pad;
};
struct MsrListHeader {
    uint32_t nmsrs;
};
struct IrqRoutingHeader {
    uint32_t nr;
    uint32_t flags;
};

constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);
constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);

// The kernel's values, for a C compiler's view of the same headers.
static_assert(kGetSupportedCpuid == 0xc008ae05);
static_assert(kSetCpuid2 == 0x4008ae90);
static_assert(kSetMsrs == 0x4008ae89);
static_assert(kSetGsiRouting == 0x4008ae6a);

}  // namespace kvmkit::kvm::uapi
