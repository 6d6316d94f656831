// The guest RAM layout derived from the memory size: RAM below the 32-bit
// MMIO hole, the rest above 4 GiB; and the e820 map that describes it.
#pragma once

#include <cstdint>
#include <vector>

namespace kvmkit::arch::x86_64 {

enum class E820Type : uint32_t { Ram = 1, Reserved = 2, Acpi = 3, Nvs = 4 };

struct E820Entry {
    uint64_t addr;
    uint64_t size;
    E820Type type;
    bool operator==(const E820Entry&) const = default;
};

struct RamRange {
    uint64_t base;
    uint64_t size;
};

// RAM ranges backing `mem_size` bytes: [0, min(mem, hole)) and, if needed,
// [4 GiB, 4 GiB + rest).
std::vector<RamRange> ram_ranges(uint64_t mem_size);

// The end of RAM below 4 GiB (exclusive).
uint64_t low_ram_end(uint64_t mem_size);

// The e820 map for a machine with `mem_size` bytes of RAM: conventional
// memory, the EBDA and BIOS/ACPI area reserved, RAM from 1 MiB, and RAM
// above 4 GiB when the memory does not fit below the hole.
std::vector<E820Entry> build_e820(uint64_t mem_size);

}  // namespace kvmkit::arch::x86_64
