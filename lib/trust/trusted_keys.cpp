#include "trust/trusted_keys.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string_view>

#include "support/file_io.h"
#include "support/unique_fd.h"
#include "trust/openssl_ptr.h"

namespace bpfwarden {
namespace {

struct DirClose {
    void operator()(DIR* dir) const noexcept { closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirClose>;

std::string quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

std::string key_where(const std::filesystem::path& path) { return "trusted key " + quoted(path); }

std::string octal_mode(mode_t mode) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "%04o", static_cast<unsigned>(mode & 07777));
    return buffer;
}

std::string owner_name(uid_t uid) { return uid == 0 ? "root" : std::to_string(uid); }

// The directory and every key file: only the required owner may change them.
Result<void> check_owner_and_mode(const struct stat& st, const std::string& where, const std::filesystem::path& path,
                                  const KeyDirRules& rules) {
    if (st.st_uid != rules.required_owner)
        return fail(EPERM, where + " is owned by uid " + std::to_string(st.st_uid) + ", not by " +
                               (rules.required_owner == 0 ? "root" : "uid " + std::to_string(rules.required_owner)) +
                               ": run 'chown " + owner_name(rules.required_owner) + " " + path.string() + "'");
    const bool world = st.st_mode & S_IWOTH;
    if (world || (st.st_mode & S_IWGRP)) {
        const char* who = world ? "world-writable" : "group-writable";  // the mode tells the rest
        return fail(EPERM, where + " is " + who + " (mode " + octal_mode(st.st_mode) + "): run 'chmod go-w " +
                               path.string() + "'");
    }
    return {};
}

std::string file_type(mode_t mode) {
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISLNK(mode))
        return "a symbolic link";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device";
    return "not a regular file";
}

size_t count(std::string_view text, std::string_view needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + needle.size()))
        ++n;
    return n;
}

std::string fingerprint_of(EVP_PKEY* key) {
    int length = i2d_PUBKEY(key, nullptr);
    if (length <= 0) {
        take_openssl_error();
        return {};
    }
    std::vector<unsigned char> der(static_cast<size_t>(length));
    unsigned char* out = der.data();
    if (i2d_PUBKEY(key, &out) != length) {
        take_openssl_error();
        return {};
    }
    return "sha256:" + sha256_hex(der);
}

// Before any PEM parsing: refuse a private key outright, and for a file with
// no PEM block or several, say what it is and how to convert it.
Result<void> check_single_pem_block(std::string_view text, const std::filesystem::path& path,
                                    const std::string& where) {
    if (text.find("PRIVATE KEY-----") != std::string_view::npos)
        return fail(EPERM, where +
                               " is a private key, which must never be among the trusted keys: move it "
                               "where only the signer can read it, and trust its public half instead "
                               "('openssl pkey -in PRIVATE-KEY -pubout')");
    const size_t blocks = count(text, "-----BEGIN ");
    if (blocks == 0) {
        if (text.starts_with("ssh-") || text.starts_with("ecdsa-sha2-"))
            return fail(EINVAL, where +
                                    " is an OpenSSH public key, not PEM: convert it with "
                                    "'ssh-keygen -e -m PKCS8 -f " +
                                    path.string() + "'");
        if (!text.empty() && static_cast<unsigned char>(text.front()) == 0x30)
            return fail(EINVAL, where +
                                    " looks like DER, not PEM: convert it with "
                                    "'openssl pkey -pubin -inform DER -in " +
                                    path.string() + "'");
        return fail(EINVAL, where + " is not a PEM public key (no '-----BEGIN PUBLIC KEY-----' line)");
    }
    if (blocks > 1)
        return fail(EINVAL, where + " holds " + std::to_string(blocks) +
                                " PEM blocks: put exactly one public key in each file");
    return {};
}

// The PEM label must be PUBLIC KEY; the usual other labels get a conversion hint.
Result<void> check_pem_label(std::string_view kind, const std::filesystem::path& path, const std::string& where) {
    if (kind == "RSA PUBLIC KEY")
        return fail(EINVAL, where +
                                " is a PKCS#1 RSA public key; convert it to SubjectPublicKeyInfo with "
                                "'openssl rsa -RSAPublicKey_in -in " +
                                path.string() + " -pubout'");
    if (kind == "CERTIFICATE")
        return fail(EINVAL, where +
                                " is a certificate, not a public key: extract its key with "
                                "'openssl x509 -in " +
                                path.string() + " -pubkey -noout'");
    if (kind != "PUBLIC KEY")
        return fail(EINVAL, where + " holds a '" + std::string(kind) +
                                "' PEM block, not a public key ('-----BEGIN PUBLIC KEY-----')");
    return {};
}

// Exactly one PEM SubjectPublicKeyInfo, and a key type we accept.
Result<TrustedKey> parse_public_key(std::string_view text, const std::filesystem::path& path) {
    const std::string where = key_where(path);
    if (auto shape = check_single_pem_block(text, path, where); !shape)
        return std::unexpected(shape.error());

    BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!bio)
        return fail(ENOMEM, "read " + where);
    char* raw_label = nullptr;
    char* raw_header = nullptr;
    unsigned char* raw_der = nullptr;
    long der_length = 0;
    const int read_ok = PEM_read_bio(bio.get(), &raw_label, &raw_header, &raw_der, &der_length);
    OpensslPtr<char> label(raw_label);
    OpensslPtr<char> header(raw_header);
    OpensslPtr<unsigned char> der(raw_der);
    if (read_ok != 1)
        return fail(EINVAL, where + " is not valid PEM (" + take_openssl_error() + ")");

    if (auto labelled = check_pem_label(label.get(), path, where); !labelled)
        return std::unexpected(labelled.error());

    const unsigned char* cursor = der.get();
    EvpPkeyPtr key(d2i_PUBKEY(nullptr, &cursor, der_length));
    if (!key)
        return fail(EINVAL, where + " is not a valid public key (" + take_openssl_error() + ")");
    if (cursor != der.get() + der_length)
        return fail(EINVAL, where + " has bytes after its public key inside the PEM block");

    auto algorithm = key_algorithm(*key);
    if (!algorithm)
        return std::unexpected(algorithm.error().wrap(where));
    std::string fingerprint = fingerprint_of(key.get());
    if (fingerprint.empty())
        return fail(ENOMEM, "fingerprint " + where);
    return TrustedKey{path.filename().string(), path, std::move(*algorithm), std::move(fingerprint), std::move(key)};
}

// Opens `name` relative to `dirfd` (AT_FDCWD: as a path), checks what it is,
// who owns it and who may write it, and parses it.
Result<TrustedKey> load_key_at(int dirfd, const std::string& name, const std::filesystem::path& path,
                               const KeyDirRules& rules, bool follow_symlink) {
    const std::string where = key_where(path);
    const char* symlink_refused =
        " is a symbolic link, which is never followed among trusted keys: replace it with a copy of the key file";
    // Look before opening: opening a device or FIFO may have side effects.
    struct stat st{};
    if (fstatat(dirfd, name.c_str(), &st, follow_symlink ? 0 : AT_SYMLINK_NOFOLLOW) != 0)
        return fail_errno("stat " + where);
    if (S_ISLNK(st.st_mode))
        return fail(ELOOP, where + symlink_refused);
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, where + " is " + file_type(st.st_mode) + ", not a key file");

    UniqueFd fd(
        openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (follow_symlink ? 0 : O_NOFOLLOW)));
    if (!fd) {
        if (errno == ELOOP && !follow_symlink)
            return fail(ELOOP, where + symlink_refused);  // swapped in since fstatat
        return fail_errno("open " + where);
    }
    // What counts is the file actually opened.
    if (fstat(fd.get(), &st) != 0)
        return fail_errno("stat " + where);
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, where + " is " + file_type(st.st_mode) + ", not a key file");
    if (auto safe = check_owner_and_mode(st, where, path, rules); !safe)
        return std::unexpected(safe.error());
    if (st.st_size == 0)
        return fail(EINVAL, where + " is empty, not a PEM public key");
    if (static_cast<uintmax_t>(st.st_size) > kMaxPublicKeyBytes)
        return fail(EFBIG,
                    where + " is larger than " + std::to_string(kMaxPublicKeyBytes) + " bytes, which no public key is");

    std::string text(static_cast<size_t>(st.st_size), '\0');
    if (auto filled = read_exactly(fd.get(), std::span<char>(text), where); !filled)
        return std::unexpected(filled.error());
    return parse_public_key(text, path);
}

bool looks_like_key_file(std::string_view name) {
    return !name.starts_with('.') && (name.ends_with(".pem") || name.ends_with(".pub"));
}

// Signature lengths each key type can produce, to tell a truncated or
// mangled signature from one by the wrong key.
struct LengthRange {
    size_t min;
    size_t max;
    std::string text;
};

LengthRange signature_lengths(const TrustedKey& key) {
    const auto max = static_cast<size_t>(std::max(EVP_PKEY_get_size(key.key.get()), 0));
    if (key.algorithm.starts_with("ecdsa-"))  // DER SEQUENCE of two INTEGERs
        return {8, max, "at most " + std::to_string(max) + " bytes"};
    return {max, max, std::to_string(max) + " bytes"};
}

bool looks_like_text(std::span<const unsigned char> bytes) {
    return std::all_of(bytes.begin(), bytes.end(),
                       [](unsigned char c) { return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t'; });
}

}  // namespace

Result<TrustedKeys> TrustedKeys::load_dir(const std::filesystem::path& dir, KeyDirRules rules) {
    const std::string where = "trusted key directory " + quoted(dir);
    UniqueFd dirfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd)
        return fail_errno("open " + where);
    struct stat st{};
    if (fstat(dirfd.get(), &st) != 0)
        return fail_errno("stat " + where);
    if (auto safe = check_owner_and_mode(st, where, dir, rules); !safe)
        return std::unexpected(safe.error());

    // readdir() gets its own descriptor; dirfd stays the anchor for openat().
    UniqueFd listing_fd(fcntl(dirfd.get(), F_DUPFD_CLOEXEC, 0));
    if (!listing_fd)
        return fail_errno("list " + where);
    DirPtr listing(fdopendir(listing_fd.get()));
    if (!listing)
        return fail_errno("list " + where);
    listing_fd.release();  // now owned by listing

    std::vector<std::string> names;
    for (;;) {
        errno = 0;
        const dirent* entry = readdir(listing.get());
        if (!entry) {
            if (errno != 0)
                return fail_errno("list " + where);
            break;
        }
        if (looks_like_key_file(entry->d_name))
            names.emplace_back(entry->d_name);
    }
    if (names.empty())
        return fail(ENOKEY, "no trusted keys in " + quoted(dir) +
                                " (no *.pem or *.pub files): install the "
                                "signer's PEM public key there");
    std::sort(names.begin(), names.end());

    TrustedKeys keys;
    for (const auto& name : names) {
        auto key = load_key_at(dirfd.get(), name, dir / name, rules, false);
        if (!key)
            return std::unexpected(key.error());
        keys.keys_.push_back(std::move(*key));
    }
    return keys;
}

Result<TrustedKeys> TrustedKeys::load_file(const std::filesystem::path& file, KeyDirRules rules) {
    auto key = load_key_at(AT_FDCWD, file.string(), file, rules, true);
    if (!key)
        return std::unexpected(key.error());
    TrustedKeys keys;
    keys.keys_.push_back(std::move(*key));
    return keys;
}

Result<const TrustedKey*> TrustedKeys::verify(std::span<const unsigned char> data,
                                              std::span<const unsigned char> signature) const {
    if (keys_.empty())
        return fail(ENOKEY, "no trusted keys to verify the signature with");
    std::string names;
    for (const auto& key : keys_)
        names += (names.empty() ? "" : ", ") + key.name;
    const std::string key_count =
        keys_.size() == 1 ? "the trusted key" : "any of the " + std::to_string(keys_.size()) + " trusted keys";

    if (signature.empty())
        return fail(EBADMSG, "signature is empty (0 bytes)");

    std::vector<const TrustedKey*> candidates;
    std::string lengths;
    for (const auto& key : keys_) {
        LengthRange range = signature_lengths(key);
        if (signature.size() >= range.min && signature.size() <= range.max)
            candidates.push_back(&key);
        lengths += (lengths.empty() ? "" : "; ") + key.name + ": " + key.algorithm + ", " + range.text;
    }
    if (candidates.empty()) {
        std::string hint = looks_like_text(signature)
                               ? "; it looks like text, but a signature is the raw bytes 'openssl pkeyutl -sign "
                                 "-rawin' or 'openssl dgst -sha256 -sign' writes, not base64 or hex"
                               : ": truncated, or not a signature";
        return fail(EBADMSG,
                    "signature is " + std::to_string(signature.size()) + " bytes, a length " +
                        (keys_.size() == 1 ? "the trusted key does not produce"
                                           : "none of the " + std::to_string(keys_.size()) + " trusted keys produces") +
                        " (" + lengths + ")" + hint);
    }

    for (const TrustedKey* key : candidates) {
        auto verified = verify_signature(*key->key, data, signature);
        if (!verified)
            return std::unexpected(verified.error().wrap("verify with trusted key " + quoted(key->path)));
        if (*verified)
            return key;
    }
    return fail(EBADMSG, "signature does not verify with " + key_count + " (" + names +
                             "): the data changed after signing, or it was signed by a key that is not trusted");
}

}  // namespace bpfwarden
