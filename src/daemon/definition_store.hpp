// DefinitionStore: the persistent VM definitions, one file per VM.
//
//   <state-dir>/vms/<name>.json     the VM document (docs/vm-config.md schema,
//                                   stored in canonical form)
//   <state-dir>/autostart/<name>    present = start this VM when kvmkitd starts
//
// Autostart is a management fact, not part of the VM's machine, so it lives
// outside the VM document (as libvirt keeps autostart links next to, not in,
// the domain XML). Every write is atomic (base::write_file_atomic).
// Not thread-safe: the daemon serializes calls.
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "vmm/config.hpp"

namespace kvmkit::daemon {

class DefinitionStore {
public:
    // Creates the directories (0700 for vms/: definitions may name private disks).
    static base::Result<DefinitionStore> open(const std::string& state_dir);

    // Parses and validates a definition; the document must name the VM.
    static base::Result<vmm::VmConfig> parse(const std::string& json_text);

    // Validates and stores; returns the stored config. Replaces an existing definition.
    base::Result<vmm::VmConfig> define(const std::string& json_text);
    base::Result<void> undefine(const std::string& name);
    bool exists(const std::string& name) const;
    base::Result<vmm::VmConfig> load(const std::string& name) const;
    std::vector<std::string> names() const;  // sorted

    bool autostart(const std::string& name) const;
    base::Result<void> set_autostart(const std::string& name, bool on);

    std::string definition_path(const std::string& name) const { return dir_ + "/vms/" + name + ".json"; }

private:
    explicit DefinitionStore(std::string dir) : dir_(std::move(dir)) {}
    std::string autostart_path(const std::string& name) const { return dir_ + "/autostart/" + name; }

    std::string dir_;
};

}  // namespace kvmkit::daemon
