#include "policy/policy_bundle.h"

#include <sys/stat.h>

#include <algorithm>

#include "support/file_io.h"
#include "trust/rollback_state.h"
#include "trust/signature.h"
#include "trust/signed_text.h"

namespace bpfwarden {
namespace {

using namespace signed_text;

constexpr std::string_view kMagic = "bpfwarden-policy-bundle";
constexpr const char* kDocument = "a policy bundle";
constexpr size_t kMaxSignatureBytes = 16 * 1024;

bool name_char_allowed(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

// A name the policy directory would read as a policy file, spelled so that
// it survives every shell and configuration-management tool unquoted.
Problem file_name_problem(std::string_view name) {
    const std::string subject = "file name " + quote(name);
    if (name.empty())
        return subject + " is empty";
    if (name.size() > kPolicyBundleMaxNameLength)
        return subject + " is " + std::to_string(name.size()) + " characters long, more than " +
               std::to_string(kPolicyBundleMaxNameLength);
    for (const char c : name)
        if (!name_char_allowed(c))
            return subject + " contains " + describe_char(c) + "; allowed are A-Z a-z 0-9 _ . -";
    if (name.front() == '.' || !is_policy_file_name(std::string(name)))
        return subject + " is not a policy file name (NAME.toml, not starting with '.')";
    return std::nullopt;
}

Problem file_size_problem(std::string_view name, uint64_t size) {
    if (size > kMaxPolicyFileBytes)
        return "size of file " + quote(name) + " is " + std::to_string(size) + " bytes, more than the " +
               std::to_string(kMaxPolicyFileBytes) + " a policy file may have";
    return std::nullopt;
}

// One spelling per bundle: files strictly ascending, as the directory merges them.
Problem order_problem(std::string_view previous, std::string_view name) {
    if (name == previous)
        return "duplicate file " + quote(name);
    if (name < previous)
        return "file " + quote(name) + " is listed after " + quote(previous) +
               ": files are listed in byte order, the order the policy directory merges them";
    return std::nullopt;
}

class Parser {
public:
    Parser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

    Result<PolicyBundle> run() {
        auto problem = walk_lines(text_, kDocument, [this](size_t line_number, const Fields& fields) {
            line_number_ = line_number;
            return parse_line(fields);
        });
        if (problem)
            return fail(EINVAL, source_ + ":" + std::to_string(problem->line) + ": " + problem->reason);
        if (line_number_ < 2)
            return fail(EINVAL, source_ + ":2: expected 'version <number>', found the end of the file");
        if (line_number_ < 3)
            return fail(EINVAL, source_ + ":3: expected 'created <time>', found the end of the file");
        return std::move(bundle_);
    }

private:
    Problem parse_line(const Fields& fields) {
        const std::string_view keyword = fields.field[0];
        switch (line_number_) {
        case 1: return parse_header(fields);
        case 2:
            if (keyword != "version")
                return "expected 'version <number>' on line 2, found " + quote(keyword);
            return parse_version(fields);
        case 3:
            if (keyword != "created")
                return "expected 'created <time>' on line 3, found " + quote(keyword);
            if (fields.count != 2)
                return std::string("'created' takes one field: created YYYY-MM-DDTHH:MM:SSZ");
            bundle_.created = std::string(fields.field[1]);
            return created_problem(fields.field[1]);
        default: break;
        }
        if (keyword == "file")
            return parse_file(fields);
        if (keyword == "version" || keyword == "created" || keyword == kMagic)
            return quote(keyword) + " may appear only once, on line " +
                   (keyword == kMagic      ? "1"
                    : keyword == "version" ? "2"
                                           : "3");
        return "unknown keyword " + quote(keyword);
    }

    Problem parse_header(const Fields& fields) {
        if (fields.field[0] != kMagic)
            return std::string("not a bpfwarden policy bundle: the first line must be 'bpfwarden-policy-bundle 1'");
        if (fields.count != 2)
            return std::string("the first line must be 'bpfwarden-policy-bundle <format>'");
        const Decimal format = parse_decimal(fields.field[1]);
        if (format.error == DecimalError::too_large ||
            (format.error == DecimalError::none && format.value != kPolicyBundleFormat))
            return "unsupported policy bundle format " + quote(fields.field[1]) + ": this bpfwarden reads format " +
                   std::to_string(kPolicyBundleFormat);
        return decimal_syntax_problem("format", fields.field[1], format, kPolicyBundleFormat);
    }

    Problem parse_version(const Fields& fields) {
        if (fields.count != 2)
            return std::string("'version' takes one field: version <number>");
        const Decimal version = parse_decimal(fields.field[1]);
        if (Problem problem = decimal_syntax_problem("version", fields.field[1], version, kMaxSignedVersion))
            return problem;
        bundle_.version = version.value;
        return version_problem(version.value);
    }

    Problem parse_file(const Fields& fields) {
        if (fields.count != 4)
            return std::string("'file' takes three fields: file <name> <size> <sha256>");
        if (bundle_.files.size() == kPolicyBundleMaxFiles)
            return "more than " + std::to_string(kPolicyBundleMaxFiles) + " files";
        const std::string_view name = fields.field[1];
        if (Problem problem = file_name_problem(name))
            return problem;
        if (!bundle_.files.empty())
            if (Problem problem = order_problem(bundle_.files.back().name, name))
                return problem;
        const Decimal size = parse_decimal(fields.field[2]);
        if (Problem problem =
                decimal_syntax_problem("size of file " + quote(name), fields.field[2], size, kMaxPolicyFileBytes))
            return problem;
        if (Problem problem = file_size_problem(name, size.value))
            return problem;
        if (Problem problem = sha256_problem("file " + quote(name), fields.field[3]))
            return problem;
        bundle_.files.push_back({std::string(name), size.value, std::string(fields.field[3])});
        return std::nullopt;
    }

    std::string_view text_;
    const std::string& source_;
    PolicyBundle bundle_;
    size_t line_number_ = 0;
};

std::span<const unsigned char> bytes_of(std::string_view text) {
    return {reinterpret_cast<const unsigned char*>(text.data()), text.size()};
}

Result<std::vector<std::string>> policy_file_names(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (is_policy_file_name(name))
            names.push_back(std::move(name));
    }
    if (ec)
        return fail_system(ec.value(), "read policy directory '" + dir.string() + "'");
    std::sort(names.begin(), names.end());
    return names;
}

Result<VerifiedPolicyFile> read_listed_file(const std::filesystem::path& dir, const PolicyBundleFile& entry) {
    const std::filesystem::path file = dir / entry.name;
    auto text = read_trusted_config_file(file, kMaxPolicyFileBytes, "policy file");
    if (!text) {
        if (text.error().errnum() == ENOENT)
            return fail(EBADMSG, "policy file '" + file.string() +
                                     "' is listed in the signed policy bundle but missing: the bundle is "
                                     "incomplete, refusing it");
        return std::unexpected(text.error());
    }
    std::string difference;
    if (text->size() != entry.size)
        difference = std::to_string(text->size()) + " bytes, signed " + std::to_string(entry.size);
    else if (sha256_hex(bytes_of(*text)) != entry.sha256)
        difference = "same size, another SHA-256";
    if (!difference.empty())
        return fail(EBADMSG, "policy file '" + file.string() + "' does not match the signed policy bundle (" +
                                 difference + "): modified after signing, refusing the bundle");
    return VerifiedPolicyFile{entry.name, std::move(*text)};
}

Result<void> refuse_unlisted_files(const std::filesystem::path& dir, const PolicyBundle& bundle) {
    auto names = policy_file_names(dir);
    if (!names)
        return std::unexpected(names.error());
    for (const std::string& name : *names) {
        const bool listed = std::any_of(bundle.files.begin(), bundle.files.end(),
                                        [&](const PolicyBundleFile& file) { return file.name == name; });
        if (!listed)
            return fail(EBADMSG, "policy file '" + (dir / name).string() +
                                     "' is not in the signed policy bundle: remove it or sign the directory again "
                                     "('bpfwardenctl policy sign')");
    }
    return {};
}

Result<std::string> verify_signature_of(const std::filesystem::path& dir, const PolicyTrust& trust,
                                        std::span<const unsigned char> bundle_bytes) {
    auto keys = trust.key_file.empty() ? TrustedKeys::load_dir(trust.keys_dir, trust.key_rules)
                                       : TrustedKeys::load_file(trust.key_file, trust.key_rules);
    if (!keys)
        return std::unexpected(keys.error());
    auto signature = read_regular_file(dir / kPolicyBundleSignatureFile, kMaxSignatureBytes, "policy bundle signature");
    if (!signature) {
        if (signature.error().errnum() == ENOENT)
            return fail(ENOENT, "policy bundle in " + dir.string() + " is not signed (no " +
                                    kPolicyBundleSignatureFile + "): sign it with 'bpfwardenctl policy sign'");
        return std::unexpected(signature.error());
    }
    auto signer = keys->verify(bundle_bytes, *signature);
    if (!signer)
        return std::unexpected(signer.error().wrap("policy bundle " + (dir / kPolicyBundleFile).string()));
    const TrustedKey& key = **signer;
    return key.name + " (" + key.algorithm + ", " + key.fingerprint + ")";
}

}  // namespace

Result<PolicyBundle> parse_policy_bundle(std::span<const unsigned char> bytes, const std::string& source_name) {
    if (bytes.empty())
        return fail(EINVAL, source_name + ": empty policy bundle");
    if (bytes.size() > kPolicyBundleMaxBytes)
        return fail(EINVAL, source_name + ": policy bundle is " + std::to_string(bytes.size()) +
                                " bytes, more than the " + std::to_string(kPolicyBundleMaxBytes) + " allowed");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return Parser(text, source_name).run();
}

std::string serialize_policy_bundle(const PolicyBundle& bundle) {
    std::string out = std::string(kMagic) + " " + std::to_string(bundle.format) + "\nversion " +
                      std::to_string(bundle.version) + "\ncreated " + bundle.created + "\n";
    for (const PolicyBundleFile& file : bundle.files)
        out += "file " + file.name + " " + std::to_string(file.size) + " " + file.sha256 + "\n";
    return out;
}

Result<void> validate_policy_bundle(const PolicyBundle& bundle) {
    const auto invalid = [](const std::string& reason) { return fail(EINVAL, "policy bundle: " + reason); };
    if (bundle.format != kPolicyBundleFormat)
        return invalid("unsupported policy bundle format " + std::to_string(bundle.format));
    if (Problem problem = version_problem(bundle.version))
        return invalid(*problem);
    if (Problem problem = created_problem(bundle.created))
        return invalid(*problem);
    if (bundle.files.size() > kPolicyBundleMaxFiles)
        return invalid("more than " + std::to_string(kPolicyBundleMaxFiles) + " files");
    for (size_t i = 0; i < bundle.files.size(); ++i) {
        const PolicyBundleFile& file = bundle.files[i];
        Problem problem = file_name_problem(file.name);
        if (!problem && i > 0)
            problem = order_problem(bundle.files[i - 1].name, file.name);
        if (!problem)
            problem = file_size_problem(file.name, file.size);
        if (!problem)
            problem = sha256_problem("file " + quote(file.name), file.sha256);
        if (problem)
            return invalid(*problem);
    }
    if (const size_t bytes = serialize_policy_bundle(bundle).size(); bytes > kPolicyBundleMaxBytes)
        return invalid("the bundle would be " + std::to_string(bytes) + " bytes, more than the " +
                       std::to_string(kPolicyBundleMaxBytes) + " allowed");
    return {};
}

Result<PolicyBundle> describe_policy_dir(const std::filesystem::path& dir) {
    auto names = policy_file_names(dir);
    if (!names)
        return std::unexpected(names.error());
    PolicyBundle bundle;
    for (const std::string& name : *names) {
        auto text = read_trusted_config_file(dir / name, kMaxPolicyFileBytes, "policy file");
        if (!text)
            return std::unexpected(text.error());
        bundle.files.push_back({name, text->size(), sha256_hex(bytes_of(*text))});
    }
    return bundle;
}

Result<VerifiedPolicyBundle> verify_policy_bundle(const std::filesystem::path& dir, const PolicyTrust& trust) {
    const std::filesystem::path bundle_file = dir / kPolicyBundleFile;
    auto bundle_bytes = read_regular_file(bundle_file, kPolicyBundleMaxBytes, "policy bundle");
    if (!bundle_bytes) {
        if (bundle_bytes.error().errnum() == ENOENT)
            return fail(ENOENT, "policy directory '" + dir.string() + "' holds no signed policy bundle (no " +
                                    kPolicyBundleFile +
                                    ") and require-signed-policy is set: sign it with "
                                    "'bpfwardenctl policy sign'");
        return std::unexpected(bundle_bytes.error());
    }
    auto signer = verify_signature_of(dir, trust, *bundle_bytes);
    if (!signer)
        return std::unexpected(signer.error());
    // Only authenticated bytes are parsed.
    auto bundle = parse_policy_bundle(*bundle_bytes, bundle_file.string());
    if (!bundle)
        return std::unexpected(bundle.error());
    if (trust.check_rollback)
        if (auto fresh = RollbackState(trust.state_dir, SignedKind::PolicyBundle).check(bundle->version); !fresh)
            return std::unexpected(fresh.error());
    if (auto listed = refuse_unlisted_files(dir, *bundle); !listed)
        return std::unexpected(listed.error());
    VerifiedPolicyBundle verified{*bundle, std::move(*signer), {}};
    for (const PolicyBundleFile& entry : bundle->files) {
        auto file = read_listed_file(dir, entry);
        if (!file)
            return std::unexpected(file.error());
        verified.files.push_back(std::move(*file));
    }
    return verified;
}

PolicyTrust policy_trust_for(const ImageTrust& images) {
    return PolicyTrust{images.keys_dir, images.key_file, images.state_dir, images.key_rules, true};
}

Result<void> commit_policy_bundle_version(const PolicyTrust& trust, uint64_t version) {
    return RollbackState(trust.state_dir, SignedKind::PolicyBundle).accept(version);
}

}  // namespace bpfwarden
