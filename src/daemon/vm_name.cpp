#include "daemon/vm_name.hpp"

namespace kvmkit::daemon {

namespace {
bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
}  // namespace

base::Result<void> validate_vm_name(const std::string& name) {
    if (name.empty()) return base::fail("VM name must not be empty");
    if (name.size() > kMaxVmNameLength)
        return base::fail("VM name '" + name.substr(0, 20) + "...' is longer than " + std::to_string(kMaxVmNameLength) +
                          " characters");
    if (!is_alnum(name[0])) return base::fail("VM name '" + name + "' must start with a letter or a digit");
    for (char c : name) {
        if (!is_alnum(c) && c != '_' && c != '.' && c != '-')
            return base::fail("VM name '" + name + "' may only contain letters, digits, '_', '.' and '-'");
    }
    return base::ok();
}

}  // namespace kvmkit::daemon
