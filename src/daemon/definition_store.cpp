#include "daemon/definition_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/file.hpp"
#include "base/unique_fd.hpp"
#include "daemon/vm_name.hpp"
#include "vmm/config_json.hpp"

namespace kvmkit::daemon {

using base::fail;
using base::Result;

namespace {
Result<void> make_dir(const std::string& path, mode_t mode) {
    if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return base::ok();
    return base::fail_errno("create directory '" + path + "'");
}

Result<void> fsync_dir(const std::string& path) {
    base::UniqueFd d(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d || ::fsync(d.get()) < 0) return base::fail_errno("fsync directory '" + path + "'");
    return base::ok();
}
}  // namespace

Result<DefinitionStore> DefinitionStore::open(const std::string& state_dir) {
    TRY(make_dir(state_dir, 0755));
    TRY(make_dir(state_dir + "/vms", 0700));
    TRY(make_dir(state_dir + "/autostart", 0700));
    return DefinitionStore(state_dir);
}

Result<vmm::VmConfig> DefinitionStore::parse(const std::string& json_text) {
    vmm::VmConfig config = TRY(vmm::vm_config_from_json(json_text));
    // vm_config_from_json defaults the name; a stored definition must say it.
    auto doc = nlohmann::json::parse(json_text, nullptr, false);
    if (!doc.is_object() || !doc.contains("name")) return fail("\"name\": missing (a definition must name its VM)");
    TRY_CTX(validate_vm_name(config.name), "\"name\"");
    return config;
}

Result<vmm::VmConfig> DefinitionStore::define(const std::string& json_text) {
    vmm::VmConfig config = TRY(parse(json_text));
    TRY(base::write_file_atomic(definition_path(config.name), vmm::vm_config_to_json(config) + "\n", 0600));
    return config;
}

Result<void> DefinitionStore::undefine(const std::string& name) {
    TRY(validate_vm_name(name));
    ::unlink(autostart_path(name).c_str());
    if (::unlink(definition_path(name).c_str()) < 0) return base::fail_errno("remove '" + definition_path(name) + "'");
    TRY(fsync_dir(dir_ + "/vms"));
    return base::ok();
}

bool DefinitionStore::exists(const std::string& name) const {
    return validate_vm_name(name).has_value() && ::access(definition_path(name).c_str(), F_OK) == 0;
}

Result<vmm::VmConfig> DefinitionStore::load(const std::string& name) const {
    TRY(validate_vm_name(name));
    std::string text = TRY(base::read_text_file(definition_path(name)));
    vmm::VmConfig config = TRY_CTX(vmm::vm_config_from_json(text), definition_path(name));
    if (config.name != name) return fail(definition_path(name) + ": names VM '" + config.name + "'");
    return config;
}

std::vector<std::string> DefinitionStore::names() const {
    std::vector<std::string> out;
    DIR* d = ::opendir((dir_ + "/vms").c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        std::string f = e->d_name;
        if (f.size() <= 5 || f.compare(f.size() - 5, 5, ".json") != 0) continue;
        std::string name = f.substr(0, f.size() - 5);
        if (validate_vm_name(name)) out.push_back(name);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

bool DefinitionStore::autostart(const std::string& name) const {
    return validate_vm_name(name).has_value() && ::access(autostart_path(name).c_str(), F_OK) == 0;
}

Result<void> DefinitionStore::set_autostart(const std::string& name, bool on) {
    TRY(validate_vm_name(name));
    if (on) {
        TRY(base::write_file_atomic(autostart_path(name), "", 0600));
        return base::ok();
    }
    if (::unlink(autostart_path(name).c_str()) < 0 && errno != ENOENT)
        return base::fail_errno("remove '" + autostart_path(name) + "'");
    return fsync_dir(dir_ + "/autostart");
}

}  // namespace kvmkit::daemon
