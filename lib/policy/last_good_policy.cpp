#include "policy/last_good_policy.h"

#include <charconv>
#include <chrono>
#include <span>
#include <string_view>

#include "default_policy.h"  // generated from policy/default.toml
#include "support/atomic_file.h"
#include "support/file_io.h"
#include "support/installed_paths.h"
#include "trust/signature.h"

namespace bpfwarden {
namespace {

constexpr std::string_view kMagic = "bpfwarden-last-good-policy 1\n";
constexpr std::size_t kMaxSavedBytes = 64 << 20;

std::filesystem::path saved_file(const std::filesystem::path& state_dir) {
    return state_dir / installed::kLastGoodPolicy;
}

std::string digest_of(std::string_view body) {
    return sha256_hex(std::span(reinterpret_cast<const unsigned char*>(body.data()), body.size()));
}

std::string body_of(const CompiledPolicy& policy) {
    std::string body;
    for (std::size_t i = 0; i < policy.sources.size() && i < policy.source_texts.size(); ++i) {
        body += "file " + std::filesystem::path(policy.sources[i]).filename().string() + " " +
                std::to_string(policy.source_texts[i].size()) + "\n";
        body += policy.source_texts[i];
    }
    return body;
}

// Reads "<word> <value>\n" at `at`; the value up to the newline.
std::optional<std::string_view> field(std::string_view text, std::size_t& at, std::string_view word) {
    std::size_t end = text.find('\n', at);
    if (end == std::string_view::npos || text.substr(at, word.size() + 1) != std::string(word) + " ")
        return std::nullopt;
    std::string_view value = text.substr(at + word.size() + 1, end - at - word.size() - 1);
    at = end + 1;
    return value;
}

std::optional<uint64_t> number(std::string_view text) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

Result<Policy> parse_files(std::string_view body, const std::string& where) {
    Policy merged;
    std::size_t at = 0;
    while (at < body.size()) {
        std::size_t entry_at = at;
        auto header = field(body, at, "file");
        std::string_view line = header.value_or(std::string_view());
        std::size_t space = line.rfind(' ');
        auto bytes = space == std::string_view::npos ? std::nullopt : number(line.substr(space + 1));
        if (!bytes || *bytes > body.size() - at)
            return fail(ErrorKind::PolicyInvalid, EINVAL,
                        where + ": damaged file entry at byte " + std::to_string(entry_at));
        std::string name = where + ":" + std::string(line.substr(0, space));
        auto policy = parse_policy(body.substr(at, *bytes), name);
        if (!policy)
            return fail(policy.error());
        if (auto merged_ok = merge_policy(merged, std::move(*policy)); !merged_ok)
            return fail(merged_ok.error());
        at += *bytes;
    }
    return merged;
}

Result<CompiledPolicy> compile_saved(const std::filesystem::path& state_dir, const PathResolver& resolve) {
    auto saved = load_last_good_policy(state_dir);
    if (!saved)
        return fail(saved.error());
    return compile_policy(saved->policy, resolve);
}

}  // namespace

Result<void> save_last_good_policy(const std::filesystem::path& state_dir, const CompiledPolicy& policy) {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    // The digest covers everything after its own line, the time saved too.
    std::string covered = "saved " + std::to_string(now.count()) + "\n" + body_of(policy);
    std::string text = std::string(kMagic) + "digest " + digest_of(covered) + "\n" + covered;
    auto written = write_file_atomically(saved_file(state_dir), text, 0600,
                                         [](std::string_view old) { return old.starts_with(kMagic); });
    if (!written)
        return fail(written.error().wrap("save the last good policy"));
    return {};
}

Result<SavedPolicy> load_last_good_policy(const std::filesystem::path& state_dir) {
    std::filesystem::path file = saved_file(state_dir);
    auto text = read_config_file(file, kMaxSavedBytes, "last good policy");
    if (!text)
        return fail(text.error());
    std::string_view view = *text;
    std::size_t at = kMagic.size();
    auto digest = view.starts_with(kMagic) ? field(view, at, "digest") : std::nullopt;
    std::size_t covered_at = at;
    auto saved = digest ? field(view, at, "saved") : std::nullopt;
    auto when = saved ? number(*saved) : std::nullopt;
    if (!when)
        return fail(ErrorKind::PolicyInvalid, EINVAL, file.string() + ": not a saved policy (bad header)");
    if (digest_of(view.substr(covered_at)) != *digest)
        return fail(ErrorKind::PolicyInvalid, EINVAL, file.string() + ": damaged (digest mismatch)");
    std::string_view body = view.substr(at);
    auto policy = parse_files(body, file.string());
    if (!policy)
        return fail(policy.error());
    return SavedPolicy{std::move(*policy), digest_of(body), *when};
}

Result<Policy> shipped_default_policy() { return parse_policy(kShippedDefaultPolicy, "(shipped default policy)"); }

std::string_view to_string(PolicySource source) {
    switch (source) {
    case PolicySource::PolicyDirectory: return "policy directory";
    case PolicySource::LastGood: return "last good policy";
    case PolicySource::ShippedDefault: return "shipped default policy";
    }
    return "unknown";
}

Result<ChosenPolicy> choose_policy(const std::filesystem::path& policy_dir, const std::filesystem::path& state_dir,
                                   const PathResolver& resolve, const PolicyTrust* require_signed) {
    ChosenPolicy chosen;
    auto from_dir = compile_policy_dir(policy_dir, resolve, nullptr, require_signed);
    if (from_dir) {
        chosen.policy = std::move(*from_dir);
        return chosen;
    }
    chosen.problem = from_dir.error();
    if (auto saved = compile_saved(state_dir, resolve)) {
        chosen.policy = std::move(*saved);
        chosen.source = PolicySource::LastGood;
        return chosen;
    } else if (saved.error().errnum() != ENOENT) {
        chosen.problem = chosen.problem->note("the last good policy is unusable too: " + saved.error().message());
    }
    auto shipped = shipped_default_policy();
    if (!shipped)
        return fail(shipped.error().wrap("shipped default policy"));
    auto compiled = compile_policy(*shipped, resolve);
    if (!compiled)
        return fail(compiled.error().wrap("shipped default policy"));
    chosen.policy = std::move(*compiled);
    chosen.source = PolicySource::ShippedDefault;
    return chosen;
}

}  // namespace bpfwarden
