#include "trust/signature.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string_view>

#include "support/file_io.h"
#include "support/text.h"
#include "support/unique_fd.h"
#include "trust/openssl_ptr.h"

namespace bpfwarden {
namespace {

// A private key file is a few hundred bytes (RSA-4096 PEM: ~3.3 KiB).
constexpr size_t kMaxPrivateKeyBytes = 64 * 1024;

// Key material read from disk is wiped before its memory is released.
class SecretBytes {
public:
    SecretBytes() = default;
    SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {}
    SecretBytes& operator=(SecretBytes&&) = delete;
    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;
    ~SecretBytes() {
        if (!bytes_.empty())
            OPENSSL_cleanse(bytes_.data(), bytes_.size());
    }
    std::vector<unsigned char>& bytes() { return bytes_; }
    std::string_view text() const { return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()}; }

private:
    std::vector<unsigned char> bytes_;
};

// Never prompts: a passphrase-protected key simply fails to load.
int refuse_passphrase(char*, int, int, void*) { return -1; }

std::string quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

std::string with_openssl_error(std::string context) {
    std::string detail = take_openssl_error();
    return detail.empty() ? context : context + " (" + detail + ")";
}

// Ed25519 signs the message itself; the others sign its SHA-256.
const EVP_MD* digest_for(const std::string& algorithm) { return algorithm == "ed25519" ? nullptr : EVP_sha256(); }

// OpenSSL may dislike a null pointer even with a zero length.
const unsigned char* data_or_empty(std::span<const unsigned char> data) {
    static const unsigned char empty = 0;
    return data.empty() ? &empty : data.data();
}

Result<SecretBytes> read_private_key_file(const std::filesystem::path& path) {
    const std::string where = "private key " + quoted(path);
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd)
        return fail_errno("open " + where);
    struct stat st{};
    if (fstat(fd.get(), &st) != 0)
        return fail_errno("stat " + where);
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, where + " is not a regular file");
    if (st.st_size == 0)
        return fail(EINVAL, where + " is empty");
    if (static_cast<uintmax_t>(st.st_size) > kMaxPrivateKeyBytes)
        return fail(EFBIG,
                    where + " is larger than " + std::to_string(kMaxPrivateKeyBytes) + " bytes, which no PEM key is");
    SecretBytes secret;
    secret.bytes().resize(static_cast<size_t>(st.st_size));
    if (auto filled = read_exactly(fd.get(), std::span(secret.bytes()), where); !filled)
        return std::unexpected(filled.error());
    return secret;
}

Result<EvpPkeyPtr> load_private_key(const std::filesystem::path& path) {
    auto secret = read_private_key_file(path);
    if (!secret)
        return std::unexpected(secret.error());
    const std::string where = "private key " + quoted(path);
    const std::string_view text = secret->text();
    if (text.find("-----BEGIN PUBLIC KEY-----") != std::string_view::npos &&
        text.find("PRIVATE KEY-----") == std::string_view::npos)
        return fail(EINVAL, where + " is a public key: signing needs the private key");
    if (text.find("ENCRYPTED") != std::string_view::npos)
        return fail(EINVAL, where +
                                " is passphrase-protected, and bpfwarden never prompts: sign with "
                                "'openssl pkeyutl -sign -rawin' (Ed25519) or 'openssl dgst -sha256 -sign' instead");

    BioPtr bio(BIO_new_mem_buf(secret->bytes().data(), static_cast<int>(secret->bytes().size())));
    if (!bio)
        return fail(ENOMEM, with_openssl_error("read " + where));
    EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr));
    if (!key)
        return fail(EINVAL, with_openssl_error(where + " is not a PEM private key"));
    return key;
}

// Creates `path` (which must not exist) with exactly `mode` and `bytes`,
// flushed to disk. A half-written file is removed.
Result<void> write_new_file(const std::filesystem::path& path, std::string_view bytes, mode_t mode,
                            const std::string& what) {
    const std::string where = what + " " + quoted(path);
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode));
    if (!fd) {
        if (errno == EEXIST)
            return fail(EEXIST, "refusing to overwrite existing " + where + ": move it away or choose another path");
        return fail_errno("create " + where);
    }
    auto failed = [&](const std::string& step) {
        Error error = Error::from_errno(step + " " + where);
        fd.reset();
        unlink(path.c_str());
        return std::unexpected(std::move(error));
    };
    // The umask may only have removed bits; set exactly what was asked.
    if (fchmod(fd.get(), mode) != 0)
        return failed("chmod");
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return failed("write");
        done += static_cast<size_t>(n);
    }
    if (fsync(fd.get()) != 0)
        return failed("sync");
    return {};
}

std::string_view bio_contents(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return len > 0 ? std::string_view(data, static_cast<size_t>(len)) : std::string_view();
}

}  // namespace

void EvpPkeyFree::operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }

std::string take_openssl_error() {
    unsigned long code = ERR_get_error();
    std::string text;
    if (code != 0) {
        std::array<char, 256> buffer{};
        ERR_error_string_n(code, buffer.data(), buffer.size());
        text = buffer.data();
    }
    ERR_clear_error();
    return text;
}

Result<std::string> key_algorithm(const EVP_PKEY& key) {
    constexpr const char* kSupported = "use Ed25519 (recommended), RSA of at least 2048 bits or ECDSA P-256";
    if (EVP_PKEY_is_a(&key, "ED25519"))
        return std::string("ed25519");
    if (EVP_PKEY_is_a(&key, "RSA")) {
        int bits = EVP_PKEY_get_bits(&key);
        if (bits < 2048)
            return fail(EKEYREJECTED, "RSA key of " + std::to_string(bits) + " bits is too weak: " + kSupported);
        return "rsa-" + std::to_string(bits);
    }
    if (EVP_PKEY_is_a(&key, "EC")) {
        std::array<char, 80> curve{};
        size_t length = 0;
        if (EVP_PKEY_get_group_name(&key, curve.data(), curve.size(), &length) != 1) {
            ERR_clear_error();
            return fail(EKEYREJECTED, std::string("EC key with explicit curve parameters instead of a named curve "
                                                  "is not supported: ") +
                                          kSupported);
        }
        std::string_view name(curve.data(), length);
        if (name == "prime256v1" || name == "P-256")
            return std::string("ecdsa-p256");
        return fail(EKEYREJECTED, "EC key on curve " + std::string(name) +
                                      " is not supported (only P-256, also called prime256v1): " + kSupported);
    }
    const char* type = EVP_PKEY_get0_type_name(&key);
    return fail(EKEYREJECTED, std::string(type ? type : "unknown") + " key is not supported: " + kSupported);
}

Result<bool> verify_signature(const EVP_PKEY& key, std::span<const unsigned char> data,
                              std::span<const unsigned char> signature) {
    auto algorithm = key_algorithm(key);
    if (!algorithm)
        return std::unexpected(algorithm.error());
    if (signature.empty())
        return false;
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx)
        return fail(ENOMEM, with_openssl_error("set up signature check"));
    EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
    // OpenSSL takes a reference on the key, not ownership, hence the cast.
    if (EVP_DigestVerifyInit(ctx.get(), &pctx, digest_for(*algorithm), nullptr, const_cast<EVP_PKEY*>(&key)) != 1)
        return fail(EINVAL, with_openssl_error("set up " + *algorithm + " signature check"));
    if (EVP_PKEY_is_a(&key, "RSA") && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
        return fail(EINVAL, with_openssl_error("select RSA PKCS#1 v1.5 padding"));
    int verdict = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), data_or_empty(data), data.size());
    if (verdict != 1) {
        ERR_clear_error();  // a mismatch queues errors nobody will read
        return false;
    }
    return true;
}

Result<void> generate_ed25519_key(const std::filesystem::path& private_key, const std::filesystem::path& public_key) {
    if (private_key.lexically_normal() == public_key.lexically_normal())
        return fail(EINVAL, "private and public key would both be written to " + quoted(private_key));
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!key)
        return fail(EINVAL, with_openssl_error("generate Ed25519 key"));

    BioPtr private_pem(BIO_new(BIO_s_secmem()));  // wiped on free
    if (!private_pem ||
        PEM_write_bio_PKCS8PrivateKey(private_pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return fail(ENOMEM, with_openssl_error("encode Ed25519 private key as PEM"));
    BioPtr public_pem(BIO_new(BIO_s_mem()));
    if (!public_pem || PEM_write_bio_PUBKEY(public_pem.get(), key.get()) != 1)
        return fail(ENOMEM, with_openssl_error("encode Ed25519 public key as PEM"));

    if (auto written = write_new_file(private_key, bio_contents(private_pem.get()), 0600, "private key"); !written)
        return written;
    if (auto written = write_new_file(public_key, bio_contents(public_pem.get()), 0644, "public key"); !written) {
        // Half a key pair is worse than none: a retry would hit EEXIST.
        unlink(private_key.c_str());
        return written;
    }
    return {};
}

Result<std::vector<unsigned char>> sign_file_bytes(const std::filesystem::path& private_key,
                                                   std::span<const unsigned char> data) {
    auto key = load_private_key(private_key);
    if (!key)
        return std::unexpected(key.error());
    auto algorithm = key_algorithm(**key);
    if (!algorithm)
        return std::unexpected(algorithm.error().wrap("private key " + quoted(private_key)));

    const std::string what = "sign with " + *algorithm + " key " + quoted(private_key);
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx)
        return fail(ENOMEM, with_openssl_error(what));
    EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
    if (EVP_DigestSignInit(ctx.get(), &pctx, digest_for(*algorithm), nullptr, key->get()) != 1)
        return fail(EINVAL, with_openssl_error(what));
    if (EVP_PKEY_is_a(key->get(), "RSA") && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
        return fail(EINVAL, with_openssl_error(what + ": select PKCS#1 v1.5 padding"));
    size_t length = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &length, data_or_empty(data), data.size()) != 1)
        return fail(EINVAL, with_openssl_error(what));
    std::vector<unsigned char> signature(length);
    if (EVP_DigestSign(ctx.get(), signature.data(), &length, data_or_empty(data), data.size()) != 1)
        return fail(EINVAL, with_openssl_error(what));
    signature.resize(length);  // ECDSA's DER is often shorter than the maximum
    return signature;
}

std::string sha256_hex(std::span<const unsigned char> data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_Digest(data_or_empty(data), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
        ERR_clear_error();
        return {};
    }
    return hex_encode({digest.data(), length});
}

}  // namespace bpfwarden
