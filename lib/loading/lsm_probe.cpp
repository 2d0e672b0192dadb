#include "loading/lsm_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "loading/skeleton.h"
#include "support/text.h"
#include "support/unique_fd.h"

#include "lsm_probe.skel.h"

namespace bpfwarden {

BPFWARDEN_SKELETON_TRAITS(bpfw_lsm_probe);

namespace {

// Loads, attaches and triggers the probe program; empty string on success.
std::string try_probe_program(const BpfImage& image) {
    auto skel = Skeleton<bpfw_lsm_probe>::open(image);
    if (!skel)
        return "cannot open LSM probe image: " + skel.error().message();
    (*skel)->rodata->probe_tgid = static_cast<__u32>(getpid());
    if (auto loaded = skel->load("LSM probe program"); !loaded) {
        if (loaded.error().errnum() == EPERM)
            return "kernel refused to load a BPF LSM program: Operation not permitted "
                   "(BPF trampolines unavailable on this kernel)";
        return "kernel refused to load a BPF LSM program: " + loaded.error().message();
    }
    std::unique_ptr<bpf_link, decltype(&bpf_link__destroy)> link(bpf_program__attach((*skel)->progs.bw_lsm_probe),
                                                                 &bpf_link__destroy);
    if (!link)
        return "kernel refused to attach a BPF LSM program: " + Error::from_errno("attach lsm/file_open").message();
    UniqueFd opened(open("/proc/self/stat", O_RDONLY | O_CLOEXEC));
    if ((*skel)->bss->hits == 0)
        return "BPF LSM program attached but never ran: 'bpf' is not an active LSM "
               "(add it to lsm= on the kernel command line)";
    return {};
}

}  // namespace

std::vector<std::string> read_active_lsms(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    std::vector<std::string> names;
    std::stringstream items(line);
    for (std::string name; std::getline(items, name, ',');)
        if (!name.empty())
            names.push_back(name);
    return names;
}

LsmStatus probe_bpf_lsm(const BpfImage& probe_image, const std::string& lsm_list_path) {
    LsmStatus status;
    status.active_lsms = read_active_lsms(lsm_list_path);
    std::string failure = try_probe_program(probe_image);
    bool listed = std::find(status.active_lsms.begin(), status.active_lsms.end(), "bpf") != status.active_lsms.end();

    if (!failure.empty()) {
        status.reason = failure;
    } else if (!status.active_lsms.empty() && !listed) {
        status.reason = "'bpf' is missing from the active LSM list (" + join(status.active_lsms, ",") + ")";
    } else {
        status.usable = true;
        return status;
    }
    if (status.active_lsms.empty())
        status.reason += "; active LSM list unreadable at " + lsm_list_path + " (is securityfs mounted?)";
    else
        status.reason += "; active LSMs: " + join(status.active_lsms, ",");
    return status;
}

}  // namespace bpfwarden
