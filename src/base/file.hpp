// Small file helpers: whole-file reads for loaders and /proc, /sys probes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace kvmkit::base {

// Reads a whole file; `limit` guards against reading a multi-GiB file by mistake.
Result<std::vector<uint8_t>> read_file(const std::string& path, size_t limit = size_t(1) << 31);
Result<std::string> read_text_file(const std::string& path, size_t limit = 1 << 20);

// Parses sizes such as "512M", "4G", "1024K", "65536" (bytes).
Result<uint64_t> parse_size(const std::string& text);

}  // namespace kvmkit::base
