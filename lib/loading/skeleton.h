// Owner of a bpftool-generated skeleton whose ELF bytes come from a BpfImage
// rather than from the copy bpftool embedded at build time: the skeleton gives
// typed access to programs, maps and globals, the image decides what loads.
#pragma once

#include <bpf/libbpf.h>

#include <memory>

#include "support/error.h"
#include "trust/bpf_image.h"

namespace bpfwarden {

// bpftool's C skeleton API for one object, gathered for the template below.
// BPFWARDEN_SKELETON_TRAITS(file_guard) defines SkeletonTraits<file_guard>.
template <typename Skel>
struct SkeletonTraits;

// NOLINTBEGIN(bugprone-macro-parentheses): `name` is a type and a token to paste
#define BPFWARDEN_SKELETON_TRAITS(name)                                         \
    template <>                                                                 \
    struct SkeletonTraits<name> {                                               \
        static int create(name* skel) { return name##__create_skeleton(skel); } \
        static void destroy(name* skel) { name##__destroy(skel); }              \
        static int load(name* skel) { return name##__load(skel); }              \
    }
// NOLINTEND(bugprone-macro-parentheses)

template <typename Skel>
class Skeleton {
public:
    // Opens `image` (which must outlive the skeleton until load) through the
    // skeleton. The embedded bytes are never used.
    static Result<Skeleton> open(const BpfImage& image) {
        auto* raw = static_cast<Skel*>(calloc(1, sizeof(Skel)));
        if (!raw)
            return fail(ENOMEM, "allocate skeleton for '" + image.name + "'");
        Skeleton skeleton(raw);
        if (int err = SkeletonTraits<Skel>::create(raw); err)
            return std::unexpected(Error::from_libbpf(err, "create skeleton for '" + image.name + "'"));
        raw->skeleton->data = const_cast<unsigned char*>(image.bytes.data());
        raw->skeleton->data_sz = image.bytes.size();
        if (int err = bpf_object__open_skeleton(raw->skeleton, nullptr); err)
            return std::unexpected(Error::from_libbpf(
                err, "open BPF image '" + image.source.string() + "' (not a BPF object for '" + image.name + "'?)"));
        return skeleton;
    }

    Skel* operator->() const { return skel_.get(); }
    Skel* get() const { return skel_.get(); }
    bpf_object* object() const { return skel_->obj; }

    // Hands ownership to the caller (who destroys it with <name>__destroy).
    Skel* release() { return skel_.release(); }

    Result<void> load(const std::string& what) {
        if (int err = SkeletonTraits<Skel>::load(skel_.get()); err)
            return std::unexpected(Error::from_libbpf(err, "load " + what));
        return {};
    }

private:
    struct Deleter {
        void operator()(Skel* skel) const { SkeletonTraits<Skel>::destroy(skel); }
    };
    explicit Skeleton(Skel* skel) : skel_(skel) {}
    std::unique_ptr<Skel, Deleter> skel_;
};

}  // namespace bpfwarden
