#include "trust/bpf_image.h"

#include <bpf/libbpf.h>

#include "support/file_io.h"

namespace bpfwarden {

Result<BpfImage> read_image(const std::filesystem::path& dir, const std::string& name) {
    BpfImage image{name, dir / (name + ".bpf.o"), {}};
    auto bytes = read_regular_file(image.source, kMaxImageBytes, "BPF image");
    if (!bytes)
        return std::unexpected(bytes.error());
    image.bytes = std::move(*bytes);
    return image;
}

Result<ImageContents> describe_image(const BpfImage& image) {
    std::string name = object_name(image);
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name.c_str());
    bpf_object* obj = bpf_object__open_mem(image.bytes.data(), image.bytes.size(), &opts);
    if (!obj)
        return fail_errno("parse BPF image '" + image.source.string() + "'");
    ImageContents contents;
    bpf_program* prog;
    bpf_object__for_each_program(prog, obj) contents.programs.emplace_back(bpf_program__name(prog));
    bpf_map* map;
    bpf_object__for_each_map(map, obj) contents.maps.emplace_back(bpf_map__name(map));
    bpf_object__close(obj);
    return contents;
}

}  // namespace bpfwarden
