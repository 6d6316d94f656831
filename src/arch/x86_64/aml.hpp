// A small builder for the AML bytecode of the DSDT (ACPI 6.x, chapter 20):
// just the terms kvmkit's tables use (names, integers, strings, EISA IDs,
// packages, buffers, devices, scopes) and the resource descriptors of a PCI
// host bridge's _CRS (ACPI 6.4, 6.4.3 and 6.4.2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvmkit::arch::x86_64::aml {

using Bytes = std::vector<uint8_t>;

Bytes integer(uint64_t v);
Bytes string(const std::string& s);
Bytes eisa_id(const std::string& id);  // "PNP0A03" -> compressed DWord
Bytes name(const std::string& seg4, const Bytes& value);  // Name (XXXX, value)
Bytes package(const std::vector<Bytes>& elements);
Bytes buffer(const Bytes& bytes);
Bytes device(const std::string& seg4, const std::vector<Bytes>& body);
Bytes scope(const std::string& path, const std::vector<Bytes>& body);
// PkgLength encoding for a body of `len` bytes (the encoding's own bytes included).
Bytes pkg_length(size_t len);

// Resource template items; end_tag() closes a template.
Bytes io_port(uint16_t min, uint16_t max, uint8_t align, uint8_t len);
Bytes word_bus_number(uint16_t min, uint16_t max);
Bytes word_io(uint16_t min, uint16_t max);
Bytes dword_memory(uint32_t min, uint32_t max);
Bytes qword_memory(uint64_t min, uint64_t max);
Bytes end_tag();

}  // namespace kvmkit::arch::x86_64::aml
