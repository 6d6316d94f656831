#include "arch/x86_64/e820.hpp"

#include <algorithm>

#include "arch/x86_64/layout.hpp"

namespace kvmkit::arch::x86_64 {

std::vector<RamRange> ram_ranges(uint64_t mem_size) {
    std::vector<RamRange> r;
    uint64_t low = std::min(mem_size, layout::kMmioHoleStart);
    r.push_back({0, low});
    if (mem_size > low) r.push_back({layout::kRamAbove4gStart, mem_size - low});
    return r;
}

uint64_t low_ram_end(uint64_t mem_size) { return std::min(mem_size, layout::kMmioHoleStart); }

std::vector<E820Entry> build_e820(uint64_t mem_size) {
    std::vector<E820Entry> map;
    map.push_back({0, layout::kLowRamEnd, E820Type::Ram});
    map.push_back({layout::kEbdaStart, 0xa0000 - layout::kEbdaStart, E820Type::Reserved});
    // 0xa0000-0xdffff is the legacy VGA/option-ROM hole: absent from the map.
    map.push_back({layout::kAcpiStart, layout::kAcpiEnd - layout::kAcpiStart, E820Type::Reserved});
    uint64_t low_end = low_ram_end(mem_size);
    if (low_end > layout::kHighMemStart)
        map.push_back({layout::kHighMemStart, low_end - layout::kHighMemStart, E820Type::Ram});
    // Linux uses ECAM only where the firmware reserved it.
    map.push_back({layout::kPciEcamBase, layout::kPciEcamSize, E820Type::Reserved});
    if (mem_size > low_end) map.push_back({layout::kRamAbove4gStart, mem_size - low_end, E820Type::Ram});
    return map;
}

}  // namespace kvmkit::arch::x86_64
