#include "inspection/program_identity.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "support/text.h"
#include "support/unique_fd.h"

namespace bpfwarden {

std::string tag_hex(const std::array<uint8_t, 8>& tag) { return hex_encode(tag); }

Result<ProgramIdentity> identity_of_program_fd(int prog_fd) {
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
        return fail_errno("read program info");
    ProgramIdentity identity;
    identity.name.assign(info.name, strnlen(info.name, sizeof(info.name)));
    identity.type = info.type;
    std::memcpy(identity.tag.data(), info.tag, identity.tag.size());
    return identity;
}

namespace {

// Names of the maps in the program's used-map list.
Result<std::vector<std::string>> used_map_names(int prog_fd) {
    std::vector<uint32_t> ids(64);
    bpf_prog_info info{};
    info.nr_map_ids = static_cast<uint32_t>(ids.size());
    info.map_ids = reinterpret_cast<uintptr_t>(ids.data());
    uint32_t length = sizeof(info);
    if (int err = bpf_obj_get_info_by_fd(prog_fd, &info, &length); err)
        return std::unexpected(Error::from_libbpf(err, "read the program's map ids"));
    std::vector<std::string> names;
    for (uint32_t i = 0; i < std::min<uint32_t>(info.nr_map_ids, ids.size()); ++i) {
        LIBBPF_OPTS(bpf_get_fd_by_id_opts, read_only, .open_flags = BPF_F_RDONLY);
        UniqueFd map(bpf_map_get_fd_by_id_opts(ids[i], &read_only));
        if (!map)
            return fail_errno("open map id " + std::to_string(ids[i]));
        bpf_map_info map_info{};
        uint32_t map_length = sizeof(map_info);
        if (int err = bpf_obj_get_info_by_fd(map.get(), &map_info, &map_length); err)
            return std::unexpected(Error::from_libbpf(err, "read map id " + std::to_string(ids[i])));
        names.emplace_back(map_info.name);
    }
    return names;
}

}  // namespace

Result<std::vector<ProgramIdentity>> derive_identities(const BpfImage& image, const ProgramFilter& load_only) {
    // Opened the way the loader opens it (same bytes, same object name), so
    // libbpf applies the same relocations; maps are created fresh and
    // destroyed with the object: the tag does not depend on them.
    std::string name = object_name(image);
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name.c_str());
    std::unique_ptr<bpf_object, decltype(&bpf_object__close)> obj(
        bpf_object__open_mem(image.bytes.data(), image.bytes.size(), &opts), &bpf_object__close);
    if (!obj)
        return fail_errno("open BPF image '" + image.source.string() + "'");
    bpf_program* program;
    if (load_only)  // a variant for another kernel would not verify here
        bpf_object__for_each_program(program, obj.get())
            bpf_program__set_autoload(program, load_only(bpf_program__name(program)));
    if (int err = bpf_object__load(obj.get()); err)
        return std::unexpected(
            Error::from_libbpf(err, "load BPF image '" + image.source.string() + "' to derive its tags"));

    std::vector<ProgramIdentity> identities;
    bpf_program* prog;
    bpf_object__for_each_program(prog, obj.get()) {
        int fd = bpf_program__fd(prog);
        if (fd < 0)
            continue;  // not loaded (autoload off): nothing to expect
        auto identity = identity_of_program_fd(fd);
        if (!identity)
            return std::unexpected(identity.error().wrap(std::string("program '") + bpf_program__name(prog) + "'"));
        auto maps = used_map_names(fd);
        if (!maps)
            return std::unexpected(maps.error().wrap(std::string("program '") + bpf_program__name(prog) + "'"));
        identity->maps = std::move(*maps);
        identities.push_back(std::move(*identity));
    }
    return identities;
}

}  // namespace bpfwarden
