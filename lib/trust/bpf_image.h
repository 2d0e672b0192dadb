// A BPF object image read into memory exactly once.
//
// The bytes held here are the bytes handed to libbpf: nothing reopens the
// file by path after it has been read (and, once verified, checked).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "support/error.h"

namespace bpfwarden {

struct BpfImage {
    std::string name;              // "file_guard"
    std::filesystem::path source;  // where it was read from, for messages
    std::vector<unsigned char> bytes;
};

// The name libbpf gives the object when it is opened: "bpfw_<name>", as the
// skeletons are named, so that the object's own maps (.bss, .rodata) carry
// the "bpfw_" prefix self-protection recognises our maps by.
inline std::string object_name(const BpfImage& image) { return "bpfw_" + image.name; }

// Images larger than this are refused before reading.
inline constexpr std::uintmax_t kMaxImageBytes = 16 * 1024 * 1024;

// Reads <dir>/<name>.bpf.o: must be a regular file (a symlink is refused),
// non-empty and at most kMaxImageBytes.
Result<BpfImage> read_image(const std::filesystem::path& dir, const std::string& name);

// Program and map names an image declares, read by libbpf without loading
// anything into the kernel (so no privileges are needed).
struct ImageContents {
    std::vector<std::string> programs;
    std::vector<std::string> maps;
};
Result<ImageContents> describe_image(const BpfImage& image);

}  // namespace bpfwarden
