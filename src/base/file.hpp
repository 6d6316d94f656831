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

// Replaces `path` with `contents` so that a reader (or a crash) sees either the
// old file or the new one, never a mix: write a temporary file next to it,
// fsync it, rename it over `path`, fsync the directory.
Result<void> write_file_atomic(const std::string& path, const std::string& contents, unsigned mode = 0644);

// `name` in the directory of the running executable or in its ../bin, when it
// exists and is executable (build tree and install alike); otherwise `name`.
std::string sibling_executable(const std::string& name);

// Parses sizes such as "512M", "4G", "1024K", "65536" (bytes).
Result<uint64_t> parse_size(const std::string& text);

}  // namespace kvmkit::base
