#include "trust/id_anonymizer.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>

#include "support/atomic_file.h"
#include "support/file_io.h"
#include "support/text.h"

namespace bpfwarden {
namespace {

constexpr std::string_view kIdKeys[] = {"pid", "tgid", "target"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The id key that ends at `line[end]` (exclusive) when it is a whole word:
// `pid` in ` pid=` or `"pid":`, not in `ppid=`.
bool ends_with_id_key(std::string_view line, size_t end, bool json) {
    for (std::string_view key : kIdKeys) {
        std::string quoted = json ? "\"" + std::string(key) + "\"" : std::string(key);
        if (end < quoted.size() || line.substr(end - quoted.size(), quoted.size()) != quoted)
            continue;
        size_t start = end - quoted.size();
        if (json || start == 0 || line[start - 1] == ' ')
            return true;
    }
    return false;
}

}  // namespace

Result<IdAnonymizer> IdAnonymizer::from_salt_file(const std::filesystem::path& path) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) {
        std::vector<unsigned char> salt(kSaltBytes);
        if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1)
            return fail(EIO, "salt file " + quote_for_message(path.string()) + ": no random bytes");
        if (auto written = write_file_atomically(path, {reinterpret_cast<const char*>(salt.data()), salt.size()}, 0600);
            !written)
            return fail(written.error().wrap("salt file " + quote_for_message(path.string())));
        return IdAnonymizer(std::move(salt));
    }
    struct stat st{};
    if (stat(path.c_str(), &st) != 0)
        return fail_errno("salt file " + quote_for_message(path.string()));
    if ((st.st_mode & 077) != 0)
        return fail(EPERM, "salt file " + quote_for_message(path.string()) +
                               " is readable or writable by others (chmod 600 it): a known salt undoes the hashing");
    auto salt = read_regular_file(path, kSaltBytes, "salt file");
    if (!salt)
        return fail(salt.error());
    if (salt->size() != kSaltBytes)
        return fail(EINVAL, "salt file " + quote_for_message(path.string()) + " holds " + std::to_string(salt->size()) +
                                " bytes, not " + std::to_string(kSaltBytes));
    return IdAnonymizer(std::move(*salt));
}

std::string IdAnonymizer::token(uint32_t id) const {
    std::string text = std::to_string(id);
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), salt_.data(), static_cast<int>(salt_.size()),
         reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data(), &length);
    return "h:" + hex_encode({digest.data(), 6});
}

std::string IdAnonymizer::anonymize_json(std::string_view json) const { return rewrite(json, true); }
std::string IdAnonymizer::anonymize_text(std::string_view line) const { return rewrite(line, false); }

std::string IdAnonymizer::rewrite(std::string_view line, bool json) const {
    const char separator = json ? ':' : '=';
    std::string out;
    out.reserve(line.size());
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (quoted) {
            out += c;
            if (c == '\\' && i + 1 < line.size())
                out += line[++i];  // an escaped character, a quote included
            else if (c == '"')
                quoted = false;
            continue;
        }
        if (c == separator && ends_with_id_key(line, i, json) && i + 1 < line.size() && is_digit(line[i + 1])) {
            size_t end = i + 1;
            uint64_t id = 0;
            while (end < line.size() && is_digit(line[end]) && id <= UINT32_MAX)
                id = id * 10 + static_cast<uint64_t>(line[end++] - '0');
            if (id <= UINT32_MAX) {
                std::string replaced = token(static_cast<uint32_t>(id));
                out += c;
                out += json ? "\"" + replaced + "\"" : replaced;
                i = end - 1;
                continue;
            }
        }
        // A JSON key is a quoted string too: it has ended by its ':', where
        // the key is matched on the raw line.
        if (c == '"')
            quoted = true;
        out += c;
    }
    return out;
}

}  // namespace bpfwarden
