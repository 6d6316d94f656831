#include "check/probe.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/kvm.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "base/file.hpp"
#include "base/unique_fd.hpp"
#include "check/checks.hpp"
#include "kvm/kvm.hpp"
#include "kvm/vm.hpp"

namespace kvmkit::check {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

bool path_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

std::string user_name(uid_t uid) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* result = nullptr;
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) != 0 || !result) return {};
    return pw.pw_name;
}

std::optional<gid_t> primary_gid(uid_t uid) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* result = nullptr;
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) != 0 || !result) return std::nullopt;
    return pw.pw_gid;
}

// The group's name and its listed members (/etc/group or NSS).
std::optional<std::pair<std::string, std::vector<std::string>>> group_entry(gid_t gid) {
    std::vector<char> buf(1 << 16);
    group gr{};
    group* result = nullptr;
    if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &result) != 0 || !result) return std::nullopt;
    std::vector<std::string> members;
    for (char** m = gr.gr_mem; m && *m; ++m) members.emplace_back(*m);
    return std::make_pair(std::string(gr.gr_name), std::move(members));
}

UserFacts probe_user(const DeviceFacts& kvm) {
    UserFacts u;
    u.uid = ::geteuid();
    u.name = user_name(u.uid);
    u.gids.push_back(::getegid());
    int n = ::getgroups(0, nullptr);
    if (n > 0) {
        std::vector<gid_t> groups(n);
        n = ::getgroups(n, groups.data());
        for (int i = 0; i < n; ++i)
            if (std::find(u.gids.begin(), u.gids.end(), groups[i]) == u.gids.end()) u.gids.push_back(groups[i]);
    }
    if (kvm.exists) {
        if (primary_gid(u.uid) == kvm.owner_gid) u.listed_in_kvm_group = true;
        if (auto g = group_entry(kvm.owner_gid); g && !u.name.empty())
            u.listed_in_kvm_group |= std::find(g->second.begin(), g->second.end(), u.name) != g->second.end();
    }
    return u;
}

// Opens /dev/kvm and asks it everything evaluate_host() judges.
void probe_kvm(const ProbePaths& paths, HostFacts& f) {
    if (!f.kvm.exists || !f.kvm.is_char_device) return;
    auto kvm = kvm::Kvm::open(paths.kvm.c_str());
    if (!kvm) {
        f.kvm.open_errno = kvm.error().errnum() != 0 ? kvm.error().errnum() : EIO;
        return;
    }
    f.kvm.open_errno = 0;

    auto version = kvm->get_api_version();
    f.api_version = version ? CallOutcome::success(*version) : CallOutcome::failure(version.error().errnum());

    // An empty VM (no memory, no vCPUs), closed again when `vm` goes out of scope.
    auto vm = kvm->create_vm();
    f.create_vm = vm ? CallOutcome::success(0) : CallOutcome::failure(vm.error().errnum() ? vm.error().errnum() : EIO);

    // Capabilities can differ per VM type; ask the VM when the kernel allows it.
    bool ask_vm = vm && kvm->check_extension(KVM_CAP_CHECK_EXTENSION_VM) > 0;
    for (const auto& spec : capability_specs())
        f.capabilities[spec.name] = ask_vm ? vm->check_extension(spec.id) : kvm->check_extension(spec.id);
}

}  // namespace

CpuInfo parse_cpuinfo(std::string_view text) {
    CpuInfo info;
    bool have_flags = false, have_vendor = false, have_model = false;
    while (!text.empty()) {
        size_t eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            if (trim(line).empty() && have_flags) break;  // end of the first processor
            continue;
        }
        std::string_view key = trim(line.substr(0, colon));
        std::string_view value = trim(line.substr(colon + 1));
        if (key == "flags" && !have_flags) {
            have_flags = true;
            while (!value.empty()) {
                size_t sp = value.find(' ');
                std::string_view flag = value.substr(0, sp);
                if (!flag.empty()) info.flags.emplace(flag);
                value = sp == std::string_view::npos ? std::string_view{} : value.substr(sp + 1);
            }
        } else if (key == "vendor_id" && !have_vendor) {
            have_vendor = true;
            info.vendor = value;
        } else if (key == "model name" && !have_model) {
            have_model = true;
            info.model = value;
        }
    }
    return info;
}

ModuleState probe_module(const std::string& sys_module, const std::string& name, std::string_view builtin_list) {
    std::string dir = sys_module + "/" + name;
    if (path_exists(dir + "/initstate")) return ModuleState::Loaded;
    if (path_exists(dir)) return ModuleState::BuiltIn;
    // modules.builtin lines look like "kernel/arch/x86/kvm/kvm-intel.ko";
    // module names treat '-' and '_' alike.
    while (!builtin_list.empty()) {
        size_t eol = builtin_list.find('\n');
        std::string_view line = trim(builtin_list.substr(0, eol));
        builtin_list = eol == std::string_view::npos ? std::string_view{} : builtin_list.substr(eol + 1);
        size_t slash = line.rfind('/');
        std::string_view file = slash == std::string_view::npos ? line : line.substr(slash + 1);
        if (file.size() < 3 || file.substr(file.size() - 3) != ".ko") continue;
        std::string module(file.substr(0, file.size() - 3));
        std::replace(module.begin(), module.end(), '-', '_');
        if (module == name) return ModuleState::BuiltIn;
    }
    return ModuleState::Absent;
}

DeviceFacts probe_device(const std::string& path, bool try_open) {
    DeviceFacts d;
    d.path = path;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return d;
    d.exists = true;
    d.is_char_device = S_ISCHR(st.st_mode);
    d.mode = st.st_mode & 07777;
    d.major = major(st.st_rdev);
    d.minor = minor(st.st_rdev);
    d.owner_uid = st.st_uid;
    d.owner_gid = st.st_gid;
    d.owner_name = user_name(st.st_uid);
    if (auto g = group_entry(st.st_gid)) d.group_name = g->first;
    if (!d.is_char_device || !try_open) return d;
    base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK));
    d.open_errno = fd ? 0 : errno;
    return d;
}

HostFacts probe_host(const ProbePaths& paths) {
    HostFacts f;

    if (auto text = base::read_text_file(paths.cpuinfo, 16 << 20)) {
        CpuInfo info = parse_cpuinfo(*text);
        f.cpu_flags = std::move(info.flags);
        f.cpu_vendor = std::move(info.vendor);
        f.cpu_model = std::move(info.model);
    }

    utsname uts{};
    if (::uname(&uts) == 0) f.kernel_release = uts.release;

    std::string builtin_path = paths.modules_builtin;
    if (builtin_path.empty() && !f.kernel_release.empty())
        builtin_path = "/lib/modules/" + f.kernel_release + "/modules.builtin";
    std::string builtin_list;
    if (!builtin_path.empty()) builtin_list = base::read_text_file(builtin_path, 16 << 20).value_or(std::string());
    for (const char* m : {"kvm", "kvm_intel", "kvm_amd", "kvm_pvm"}) {
        ModuleState s = probe_module(paths.sys_module, m, builtin_list);
        if (s != ModuleState::Absent) f.modules[m] = s;
    }

    // /dev/kvm is opened by probe_kvm, which keeps the fd for the ioctls.
    f.kvm = probe_device(paths.kvm, /*try_open=*/false);
    f.user = probe_user(f.kvm);
    probe_kvm(paths, f);

    f.tun = probe_device(paths.tun);
    f.vhost_net = probe_device(paths.vhost_net);
    return f;
}

}  // namespace kvmkit::check
