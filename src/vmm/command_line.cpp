#include "vmm/command_line.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "base/file.hpp"
#include "vmm/config_json.hpp"

namespace kvmkit::vmm {

using base::fail;
using base::Result;

std::string default_guest_dir() {
    const char* cache = std::getenv("KVMKIT_CACHE");
    return std::string(cache && *cache ? cache : "/var/cache/kvmkit") + "/guest";
}

Result<void> apply_default_guest(VmConfig& cfg, bool cmdline_given) {
    std::string dir = default_guest_dir();
    std::string kernel = dir + "/vmlinux";
    if (::access(kernel.c_str(), R_OK) != 0)
        return fail("no --kernel given and the default guest is not built (" + kernel +
                    " missing): run scripts/build-guest.sh");
    cfg.kernel = kernel;
    if (cfg.initrd.empty() && ::access((dir + "/initramfs.cpio").c_str(), R_OK) == 0) cfg.initrd = dir + "/initramfs.cpio";
    if (!cmdline_given) {
        auto text = base::read_text_file(dir + "/cmdline");
        if (text) {
            std::string c = *text;
            while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.pop_back();
            cfg.cmdline = c;
        } else {
            cfg.cmdline = "console=ttyS0";
        }
    }
    return base::ok();
}

Result<ParsedCommandLine> parse_command_line(const std::vector<std::string>& args) {
    ParsedCommandLine out;
    VmConfig& c = out.config;
    std::string memory = "512M", cpu = "auto";
    CLI::App app{"kvmkit-vmm: run one virtual machine on /dev/kvm", "kvmkit run"};
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.add_option("--kernel", c.kernel, "Kernel: a bzImage, or an ELF vmlinux with a PVH entry note "
                                         "(default: the bundled guest)");
    app.add_option("--initrd", c.initrd, "Initial ramdisk loaded with the kernel");
    auto* cmdline_opt = app.add_option("--cmdline", c.cmdline, "Kernel command line");
    app.add_option("-m,--memory", memory, "Guest RAM, e.g. 512M or 4G (default 512M)");
    app.add_option("-c,--cpus", c.cpus, "Number of vCPUs (default 1)");
    app.add_option("--cpu", cpu, "CPU profile: auto, host, emulated or minimal (default auto: "
                                 "emulated on PVM hosts, host elsewhere)");
    app.add_option("--name", c.name, "VM name, used in logs");
    app.add_flag("--no-reboot", c.no_reboot, "Exit instead of rebooting when the guest resets");
    app.add_option("--log-level", out.log_level, "error, warn, info or debug (default warn)");
    std::vector<std::string> disks;
    app.add_option("--disk", disks, "A virtio-blk disk: PATH[,readonly=on][,cache=none|writeback] (repeatable)");
    std::vector<std::string> nets;
    app.add_option("--net", nets, "A virtio-net NIC: tap[,ifname=NAME][,vhost=on|off][,mac=MAC] or "
                                  "user[,hostfwd=tcp:[127.0.0.1]:HOSTPORT-[GUESTADDR]:GUESTPORT]...[,mac=MAC] "
                                  "(repeatable; docs/networking.md)");
    app.add_flag("--rng", c.rng, "Add a virtio-rng device (entropy from the host's getrandom)");
    std::string console = "serial";
    app.add_option("--console", console, "Where the terminal's input goes: serial (COM1, default) or virtio "
                                         "(a virtio-console, the guest's hvc0); output of both is shown");

    std::string config_file;
    auto* config_opt = app.add_option("--config", config_file,
                                      "Read the VM from a JSON file (schema: docs/vm-config.md); "
                                      "other VM options may not be given with it");

    std::vector<std::string> reversed(args.rbegin(), args.rend());
    try {
        app.parse(reversed);
    } catch (const CLI::CallForHelp&) {
        out.help = true;
        out.text = app.help();
        return out;
    } catch (const CLI::ParseError& e) {
        return fail(e.what());
    }

    if (config_opt->count() > 0) {
        for (const auto* opt : app.get_options()) {
            const std::string n = opt->get_name();
            if (opt->count() > 0 && opt != config_opt && n != "--log-level")
                return fail("--config: " + n + " cannot be combined with --config (put it in the file)");
        }
        std::string text = TRY_CTX(base::read_text_file(config_file), "--config");
        out.config = TRY_CTX(vm_config_from_json(text), "--config " + config_file);
        out.cmdline_given = out.config.cmdline_set;
        if (out.log_level != "error" && out.log_level != "warn" && out.log_level != "info" && out.log_level != "debug")
            return fail("--log-level: unknown level '" + out.log_level + "'");
        return out;
    }
    c.memory = TRY_CTX(base::parse_size(memory), "--memory");
    for (const auto& d : disks) c.disks.push_back(TRY(virtio::parse_disk_option(d)));
    for (const auto& n : nets) c.nets.push_back(TRY(net::parse_net_option(n)));
    if (console != "serial" && console != "virtio") return fail("--console: use serial or virtio, not '" + console + "'");
    c.virtio_console = console == "virtio";
    if (cpu != "auto") c.cpu_profile = TRY_CTX(arch::x86_64::parse_cpu_profile(cpu), "--cpu");
    if (out.log_level != "error" && out.log_level != "warn" && out.log_level != "info" && out.log_level != "debug")
        return fail("--log-level: unknown level '" + out.log_level + "'");
    out.cmdline_given = cmdline_opt->count() > 0;
    c.cmdline_set = out.cmdline_given;
    return out;
}

}  // namespace kvmkit::vmm
