#include "base/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/unique_fd.hpp"

namespace kvmkit::base {

Result<std::vector<uint8_t>> read_file(const std::string& path, size_t limit) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open '" + path + "'");
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return fail_errno("stat '" + path + "'");
    if (S_ISDIR(st.st_mode)) return fail("'" + path + "' is a directory");
    std::vector<uint8_t> data;
    if (S_ISREG(st.st_mode)) {
        if (static_cast<uint64_t>(st.st_size) > limit)
            return fail("'" + path + "' is too large (" + std::to_string(st.st_size) + " bytes)");
        data.reserve(st.st_size);
    }
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno("read '" + path + "'");
        }
        if (n == 0) break;
        if (data.size() + n > limit) return fail("'" + path + "' is too large");
        data.insert(data.end(), buf, buf + n);
    }
    return data;
}

Result<std::string> read_text_file(const std::string& path, size_t limit) {
    auto bytes = TRY(read_file(path, limit));
    return std::string(bytes.begin(), bytes.end());
}

Result<uint64_t> parse_size(const std::string& text) {
    if (text.empty()) return fail("empty size");
    size_t pos = 0;
    uint64_t value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        uint64_t digit = text[pos] - '0';
        if (value > (UINT64_MAX - digit) / 10) return fail("size '" + text + "' overflows");
        value = value * 10 + digit;
        ++pos;
    }
    if (pos == 0) return fail("size '" + text + "' does not start with a number");
    unsigned shift = 0;
    if (pos < text.size()) {
        switch (text[pos]) {
            case 'k': case 'K': shift = 10; break;
            case 'm': case 'M': shift = 20; break;
            case 'g': case 'G': shift = 30; break;
            case 't': case 'T': shift = 40; break;
            default: return fail("size '" + text + "' has an unknown suffix (use K, M, G or T)");
        }
        ++pos;
        if (pos < text.size() && (text[pos] == 'i' || text[pos] == 'B')) ++pos;
        if (pos < text.size() && text[pos] == 'B') ++pos;
    }
    if (pos != text.size()) return fail("size '" + text + "' has trailing characters");
    if (shift && value > (UINT64_MAX >> shift)) return fail("size '" + text + "' overflows");
    return value << shift;
}

}  // namespace kvmkit::base
