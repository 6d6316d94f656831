#include "vmm/config_json.hpp"

#include <nlohmann/json.hpp>

#include "base/file.hpp"

namespace kvmkit::vmm {

using base::fail;
using base::Result;
using nlohmann::json;

namespace {

const char* type_name(const json& v) { return v.type_name(); }

Result<std::string> get_string(const json& v, const std::string& key) {
    if (!v.is_string()) return fail("\"" + key + "\": expected a string, got " + type_name(v));
    return v.get<std::string>();
}

Result<bool> get_bool(const json& v, const std::string& key) {
    if (!v.is_boolean()) return fail("\"" + key + "\": expected true or false, got " + type_name(v));
    return v.get<bool>();
}

Result<uint64_t> get_uint(const json& v, const std::string& key) {
    if (!v.is_number_unsigned()) return fail("\"" + key + "\": expected a non-negative integer, got " + v.dump());
    return v.get<uint64_t>();
}

Result<virtio::DiskOptions> disk_from_json(const json& d, size_t index) {
    std::string where = "disks[" + std::to_string(index) + "]";
    if (!d.is_object()) return fail("\"" + where + "\": expected an object, got " + type_name(d));
    virtio::DiskOptions o;
    for (const auto& [key, value] : d.items()) {
        std::string k = where + "." + key;
        if (key == "path") {
            o.path = TRY(get_string(value, k));
        } else if (key == "readonly") {
            o.readonly = TRY(get_bool(value, k));
        } else if (key == "cache") {
            std::string c = TRY(get_string(value, k));
            if (c != "none" && c != "writeback") return fail("\"" + k + "\": use \"none\" or \"writeback\", not \"" + c + "\"");
            o.cache = c == "none" ? virtio::CacheMode::None : virtio::CacheMode::Writeback;
        } else {
            return fail("\"" + k + "\": unknown key (known: path, readonly, cache)");
        }
    }
    if (o.path.empty()) return fail("\"" + where + ".path\": missing or empty");
    return o;
}

Result<net::NetOptions> net_from_json(const json& n, size_t index) {
    std::string where = "nets[" + std::to_string(index) + "]";
    if (!n.is_object()) return fail("\"" + where + "\": expected an object, got " + type_name(n));
    if (!n.contains("backend")) return fail("\"" + where + ".backend\": missing (\"tap\" or \"user\")");
    net::NetOptions o;
    std::string backend = TRY(get_string(n["backend"], where + ".backend"));
    if (backend == "tap") o.backend = net::NetBackendKind::Tap;
    else if (backend == "user") o.backend = net::NetBackendKind::User;
    else return fail("\"" + where + ".backend\": use \"tap\" or \"user\", not \"" + backend + "\"");
    const bool tap = o.backend == net::NetBackendKind::Tap;
    for (const auto& [key, value] : n.items()) {
        std::string k = where + "." + key;
        if (key == "backend") {
            continue;
        } else if (key == "mac") {
            if (value.is_null()) continue;  // the default, derived from the VM name
            o.mac = TRY_CTX(net::parse_mac(TRY(get_string(value, k))), "\"" + k + "\"");
        } else if (key == "ifname" && tap) {
            o.ifname = TRY(get_string(value, k));
            if (!o.ifname.empty()) TRY_CTX(net::validate_ifname(o.ifname), "\"" + k + "\"");
        } else if (key == "vhost" && tap) {
            o.vhost = TRY(get_bool(value, k));
        } else if (key == "hostfwd" && !tap) {
            if (!value.is_array()) return fail("\"" + k + "\": expected an array of strings, got " + type_name(value));
            for (size_t i = 0; i < value.size(); ++i) {
                std::string ki = k + "[" + std::to_string(i) + "]";
                o.hostfwd.push_back(TRY_CTX(net::parse_hostfwd(TRY(get_string(value[i], ki))), "\"" + ki + "\""));
            }
        } else if (key == "ifname" || key == "vhost" || key == "hostfwd") {
            return fail("\"" + k + "\": not an option of backend \"" + backend + "\"");
        } else {
            return fail("\"" + k + "\": unknown key (known: backend, mac, " +
                        (tap ? "ifname, vhost" : "hostfwd") + ")");
        }
    }
    return o;
}

}  // namespace

std::string format_size(uint64_t bytes) {
    if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "G";
    if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "M";
    return std::to_string(bytes);
}

Result<VmConfig> vm_config_from_json(const std::string& text) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        return fail(std::string("not valid JSON: ") + e.what());
    }
    if (!doc.is_object()) return fail(std::string("expected a JSON object, got ") + type_name(doc));
    VmConfig c;
    for (const auto& [key, value] : doc.items()) {
        if (key == "name") {
            c.name = TRY(get_string(value, key));
        } else if (key == "kernel") {
            c.kernel = TRY(get_string(value, key));
        } else if (key == "initrd") {
            c.initrd = TRY(get_string(value, key));
        } else if (key == "cmdline") {
            c.cmdline = TRY(get_string(value, key));
            c.cmdline_set = true;
        } else if (key == "memory") {
            if (value.is_string())
                c.memory = TRY_CTX(base::parse_size(value.get<std::string>()), "\"memory\"");
            else
                c.memory = TRY(get_uint(value, key));
        } else if (key == "cpus") {
            uint64_t n = TRY(get_uint(value, key));
            if (n > 0xffffffffull) return fail("\"cpus\": too large");
            c.cpus = static_cast<uint32_t>(n);
        } else if (key == "cpu") {
            std::string p = TRY(get_string(value, key));
            if (p == "auto")
                c.cpu_profile.reset();
            else
                c.cpu_profile = TRY_CTX(arch::x86_64::parse_cpu_profile(p), "\"cpu\"");
        } else if (key == "no_reboot") {
            c.no_reboot = TRY(get_bool(value, key));
        } else if (key == "disks") {
            if (!value.is_array()) return fail(std::string("\"disks\": expected an array, got ") + type_name(value));
            for (size_t i = 0; i < value.size(); ++i) c.disks.push_back(TRY(disk_from_json(value[i], i)));
        } else if (key == "nets") {
            if (!value.is_array()) return fail(std::string("\"nets\": expected an array, got ") + type_name(value));
            for (size_t i = 0; i < value.size(); ++i) c.nets.push_back(TRY(net_from_json(value[i], i)));
        } else if (key == "rng") {
            c.rng = TRY(get_bool(value, key));
        } else if (key == "console") {
            std::string con = TRY(get_string(value, key));
            if (con != "serial" && con != "virtio") return fail("\"console\": use \"serial\" or \"virtio\", not \"" + con + "\"");
            c.virtio_console = con == "virtio";
        } else {
            return fail("\"" + key + "\": unknown key");
        }
    }
    if (c.name.empty()) return fail("\"name\": must not be empty");
    return c;
}

std::string vm_config_to_json(const VmConfig& c, int indent) {
    json doc;
    doc["name"] = c.name;
    doc["kernel"] = c.kernel;
    doc["initrd"] = c.initrd;
    if (c.cmdline_set || !c.cmdline.empty()) doc["cmdline"] = c.cmdline;
    doc["memory"] = format_size(c.memory);
    doc["cpus"] = c.cpus;
    doc["cpu"] = c.cpu_profile ? arch::x86_64::cpu_profile_name(*c.cpu_profile) : "auto";
    doc["no_reboot"] = c.no_reboot;
    json disks = json::array();
    for (const auto& d : c.disks)
        disks.push_back({{"path", d.path},
                         {"readonly", d.readonly},
                         {"cache", d.cache == virtio::CacheMode::None ? "none" : "writeback"}});
    doc["disks"] = disks;
    json nets = json::array();
    for (const auto& n : c.nets) {
        json j = {{"backend", net::backend_kind_name(n.backend)}};
        if (n.mac) j["mac"] = n.mac->to_string();
        if (n.backend == net::NetBackendKind::Tap) {
            j["ifname"] = n.ifname;
            j["vhost"] = n.vhost;
        } else {
            json fwd = json::array();
            for (const auto& f : n.hostfwd) fwd.push_back(net::format_hostfwd(f));
            j["hostfwd"] = fwd;
        }
        nets.push_back(j);
    }
    doc["nets"] = nets;
    doc["rng"] = c.rng;
    doc["console"] = c.virtio_console ? "virtio" : "serial";
    return doc.dump(indent);
}

}  // namespace kvmkit::vmm
