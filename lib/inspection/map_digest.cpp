#include "inspection/map_digest.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <span>

#include "support/text.h"

namespace bpfwarden {

namespace {

constexpr char kDomain[] = "bpfwarden-map-digest-v1";  // hashed with its NUL
constexpr char kMalformedDomain[] = "bpfwarden-map-digest-v1-malformed";

// The kernel's internal ENOTSUPP (524) leaks to user space from some
// unimplemented map operations, batch lookups among them.
constexpr int kKernelEnotsupp = 524;

// Largest number of entries read per batch call: bounds the buffers for
// large maps while keeping a policy-sized map to one call.
constexpr uint32_t kBatchEntries = 4096;

// Fetched once: EVP_sha256() makes every EVP_DigestInit_ex look the
// algorithm up in the provider again, which costs more than hashing a
// policy-sized map.
const EVP_MD* sha256_md() {
    static EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched ? fetched : EVP_sha256();
}

class Sha256 {
public:
    Sha256() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
        // Failure here means OpenSSL itself is unusable (no default
        // provider, out of memory); the digest is then all zeros and matches
        // nothing real, which the caller reports as drift.
        ok_ = ctx_ && EVP_DigestInit_ex(ctx_.get(), sha256_md(), nullptr) == 1;
    }
    void update(const void* data, size_t size) {
        if (ok_ && size)
            ok_ = EVP_DigestUpdate(ctx_.get(), data, size) == 1;
    }
    void update_le32(uint32_t value) {
        uint8_t bytes[4];
        for (int i = 0; i < 4; ++i)
            bytes[i] = static_cast<uint8_t>(value >> (8 * i));
        update(bytes, sizeof(bytes));
    }
    void update_le64(uint64_t value) {
        uint8_t bytes[8];
        for (int i = 0; i < 8; ++i)
            bytes[i] = static_cast<uint8_t>(value >> (8 * i));
        update(bytes, sizeof(bytes));
    }
    Digest finish() {
        Digest digest{};
        unsigned int len = 0;
        if (ok_ && EVP_DigestFinal_ex(ctx_.get(), digest.data(), &len) == 1 && len == digest.size())
            return digest;
        return Digest{};
    }

private:
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
    bool ok_ = false;
};

void hash_header(Sha256& sha, const char* domain, uint32_t key_size, uint32_t value_size, uint64_t count) {
    sha.update(domain, std::strlen(domain) + 1);
    sha.update_le32(key_size);
    sha.update_le32(value_size);
    sha.update_le64(count);
}

Result<Digest> digest_of_map_entries(const MapEntries& entries) {
    // Sorted by key bytes. The first eight key bytes, read big-endian, order
    // most pairs with one integer comparison; memcmp only breaks ties (a
    // memcmp call per comparison was a third of the cost of a large map).
    struct Slot {
        uint64_t prefix;
        uint32_t index;
    };
    std::vector<Slot> order(entries.count);
    const uint32_t prefix_len = std::min<uint32_t>(entries.key_size, 8);
    for (uint32_t i = 0; i < entries.count; ++i) {
        uint64_t prefix = 0;
        const uint8_t* key = entries.key(i);
        for (uint32_t b = 0; b < prefix_len; ++b)
            prefix |= uint64_t(key[b]) << (56 - 8 * b);
        order[i] = {prefix, i};
    }
    auto compare = [&](const Slot& a, const Slot& b) {
        if (a.prefix != b.prefix)
            return a.prefix < b.prefix ? -1 : 1;
        return std::memcmp(entries.key(a.index), entries.key(b.index), entries.key_size);
    };
    std::sort(order.begin(), order.end(), [&](const Slot& a, const Slot& b) { return compare(a, b) < 0; });
    for (size_t i = 1; i < order.size(); ++i)
        if (compare(order[i - 1], order[i]) == 0)
            return fail(EAGAIN, "map changed while it was read (a key came back twice)");

    // One contiguous buffer, hashed in one call.
    const size_t entry_size = size_t(entries.key_size) + entries.value_size;
    std::vector<uint8_t> sorted(order.size() * entry_size);
    uint8_t* out = sorted.data();
    for (const Slot& slot : order) {
        std::memcpy(out, entries.key(slot.index), entries.key_size);
        std::memcpy(out + entries.key_size, entries.value(slot.index), entries.value_size);
        out += entry_size;
    }
    Sha256 sha;
    hash_header(sha, kDomain, entries.key_size, entries.value_size, entries.count);
    sha.update(sorted.data(), sorted.size());
    return sha.finish();
}

bool is_per_cpu(uint32_t type) {
    return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
           type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

bool has_plain_contents(uint32_t type) {
    return type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LRU_HASH || type == BPF_MAP_TYPE_ARRAY ||
           type == BPF_MAP_TYPE_LPM_TRIE;
}

bool batch_unsupported(int err) { return err == EINVAL || err == ENOTSUP || err == kKernelEnotsupp; }

// BPF_MAP_LOOKUP_BATCH until the kernel says ENOENT (end of map).
Result<MapEntries> read_batched(int fd, const bpf_map_info& info) {
    MapEntries out{info.type, info.key_size, info.value_size, info.max_entries, 0, {}, {}};
    const uint32_t chunk = std::max<uint32_t>(1, std::min(info.max_entries, kBatchEntries));
    // Hash maps use a 4-byte bucket cursor, generic (array) batches a key.
    const size_t token_size = std::max<size_t>(info.key_size, 8);
    std::vector<uint8_t> in_token(token_size), out_token(token_size);
    bool first = true;
    for (;;) {
        out.keys.resize((size_t(out.count) + chunk) * info.key_size);
        out.values.resize((size_t(out.count) + chunk) * info.value_size);
        __u32 n = chunk;
        int ret = bpf_map_lookup_batch(fd, first ? nullptr : in_token.data(), out_token.data(),
                                       out.keys.data() + size_t(out.count) * info.key_size,
                                       out.values.data() + size_t(out.count) * info.value_size, &n, nullptr);
        int err = ret < 0 ? errno : 0;
        if (ret < 0 && err != ENOENT)
            return fail_system(err, "batch lookup");
        out.count += n;
        if (out.count > info.max_entries)
            return fail(EAGAIN, "map changed while it was read (more entries than max_entries)");
        if (err == ENOENT)
            break;
        in_token.swap(out_token);
        first = false;
    }
    out.keys.resize(size_t(out.count) * info.key_size);
    out.values.resize(size_t(out.count) * info.value_size);
    return out;
}

// bpf_map_get_next_key + bpf_map_lookup_elem: works on every kernel and
// map type with plain contents, at two syscalls per entry.
Result<MapEntries> read_key_by_key(int fd, const bpf_map_info& info) {
    MapEntries out{info.type, info.key_size, info.value_size, info.max_entries, 0, {}, {}};
    std::vector<uint8_t> key(info.key_size), next(info.key_size), value(info.value_size);
    bool first = true;
    // A map rewritten under the cursor restarts iteration at its first key:
    // bound the walk so churn ends in EAGAIN, not in a loop.
    const uint64_t max_steps = 2 * uint64_t(info.max_entries) + 16;
    for (uint64_t step = 0;; ++step) {
        if (step == max_steps)
            return fail(EAGAIN, "map changed while it was read (iteration did not end)");
        if (bpf_map_get_next_key(fd, first ? nullptr : key.data(), next.data()) != 0) {
            if (errno == ENOENT)
                break;
            return fail_errno("iterate keys");
        }
        first = false;
        key.swap(next);
        if (bpf_map_lookup_elem(fd, key.data(), value.data()) != 0) {
            if (errno == ENOENT)
                continue;  // deleted since get_next_key: not part of the contents
            return fail_errno("look up entry");
        }
        if (out.count == info.max_entries)
            return fail(EAGAIN, "map changed while it was read (more entries than max_entries)");
        out.keys.insert(out.keys.end(), key.begin(), key.end());
        out.values.insert(out.values.end(), value.begin(), value.end());
        ++out.count;
    }
    return out;
}

// One read of a map whose kind was checked: batched where the kernel can.
Result<MapEntries> read_once(int map_fd, const bpf_map_info& info, MapReadMethod method) {
    if (method == MapReadMethod::KeyByKey)
        return read_key_by_key(map_fd, info);
    auto entries = read_batched(map_fd, info);
    if (!entries && method == MapReadMethod::Auto && batch_unsupported(entries.error().errnum()))
        return read_key_by_key(map_fd, info);
    return entries;
}

Result<bpf_map_info> plain_map_info(int map_fd, std::string& what) {
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0)
        return fail_errno("read map info");
    what = "map '" + std::string(info.name) + "' (id " + std::to_string(info.id) + ")";
    if (is_per_cpu(info.type))
        return fail(ENOTSUP, what + " is per-CPU (type " + std::to_string(info.type) +
                                 "): its contents have no single desired value");
    if (!has_plain_contents(info.type))
        return fail(ENOTSUP,
                    what + " has map type " + std::to_string(info.type) + ", which holds no plain key/value contents");
    return info;
}

}  // namespace

Result<MapEntries> read_map_entries(int map_fd, MapReadMethod method) {
    std::string what;
    auto info = plain_map_info(map_fd, what);
    if (!info)
        return fail(info.error());
    auto entries = read_once(map_fd, *info, method);
    if (!entries)
        return fail(entries.error().wrap("read " + what));
    return entries;
}

Result<Digest> map_digest(int map_fd, MapReadMethod method) {
    std::string what;
    auto info = plain_map_info(map_fd, what);
    if (!info)
        return fail(info.error());
    // A hash map being rewritten while we read it (key deleted under the
    // cursor) yields a key twice; a second read usually gets a clean view.
    constexpr int kAttempts = 3;
    for (int attempt = 1;; ++attempt) {
        auto entries = read_once(map_fd, *info, method);
        Result<Digest> digest = entries ? digest_of_map_entries(*entries) : fail(entries.error());
        if (digest)
            return digest;
        if (digest.error().errnum() != EAGAIN || attempt == kAttempts)
            return fail(digest.error().wrap("digest " + what));
    }
}

Digest digest_of_entries(uint32_t key_size, uint32_t value_size,
                         std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> entries) {
    bool well_formed = std::all_of(entries.begin(), entries.end(), [&](const auto& entry) {
        return entry.first.size() == key_size && entry.second.size() == value_size;
    });
    std::sort(entries.begin(), entries.end());  // lexicographic over unsigned bytes: memcmp order
    Sha256 sha;
    hash_header(sha, well_formed ? kDomain : kMalformedDomain, key_size, value_size, entries.size());
    for (const auto& [key, value] : entries) {
        if (!well_formed) {
            // Lengths keep malformed contents unambiguous among themselves.
            sha.update_le64(key.size());
            sha.update_le64(value.size());
        }
        sha.update(key.data(), key.size());
        sha.update(value.data(), value.size());
    }
    return sha.finish();
}

std::string digest_hex(const Digest& digest) { return hex_encode(digest); }

}  // namespace bpfwarden
