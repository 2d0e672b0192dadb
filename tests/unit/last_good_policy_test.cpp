// The last good policy: saved from a policy directory that compiled, loaded
// back exactly (or refused, naming the file, when damaged), and the choice
// between the policy directory, the last good policy and the shipped default.
#include "policy/last_good_policy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "support/installed_paths.h"
#include "temp_dir.h"
#include "test_helpers.h"
#include "trust/signature.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_text(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string sha256_of(std::string_view text) {
    return sha256_hex(std::span(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
}

uint64_t now_seconds() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// Every path names a file in one directory: deterministic, no filesystem.
PathResolver fake_resolver() {
    return [](const std::string& path) {
        PathTarget target;
        fs::path written(path);
        target.name = written.filename().string();
        target.canonical = path;
        target.dir = FileIdentity{1, 2, 0, true};
        target.file = FileIdentity{1, std::hash<std::string>{}(path) | 0x1000, 0, false};
        return target;
    };
}

// What the rules say, for comparing policies parsed from different sources.
std::vector<std::tuple<RuleKind, std::string, RuleAction, bool>> rules_of(const Policy& policy) {
    std::vector<std::tuple<RuleKind, std::string, RuleAction, bool>> out;
    for (const PathRule& rule : policy.rules)
        out.emplace_back(rule.kind, rule.path, rule.action, rule.subtree);
    for (const PathRule& entry : policy.bpf.allow)
        out.emplace_back(RuleKind::Exec, "allow:" + entry.path, entry.action, entry.pid1_only);
    return out;
}
std::vector<std::tuple<RuleKind, std::string, RuleAction, bool>> rules_of(const CompiledPolicy& policy) {
    std::vector<std::tuple<RuleKind, std::string, RuleAction, bool>> out;
    for (const RuleInfo& rule : policy.rules)
        out.emplace_back(rule.kind, rule.bpf_allow ? "allow:" + rule.path : rule.path, rule.action,
                         rule.bpf_allow ? rule.pid1_only : rule.subtree);
    return out;
}

fs::path source_tree_default_policy() {
    return fs::path(__FILE__).parent_path().parent_path().parent_path() / "policy" / "default.toml";
}

class LastGoodPolicyTest : public ::testing::Test {
protected:
    LastGoodPolicyTest() {
        fs::create_directory(policy_dir_);
        fs::create_directory(state_dir_);
    }

    // A policy directory of two files that merge (the later one tightens a
    // rule and sets an option), compiled.
    CompiledPolicy good_directory() {
        dir_.write("policy.d/10-base.toml", kBase);
        dir_.write("policy.d/50-local.toml", kLocal);
        auto compiled = compile_policy_dir(policy_dir_, fake_resolver());
        EXPECT_TRUE(compiled.has_value()) << compiled.error().message();
        return compiled ? *compiled : CompiledPolicy{};
    }
    void break_directory() {
        dir_.write("policy.d/50-local.toml", "[[file]]\npath = \"/etc/shadow\"\naction = \"denyy\"\n");
    }
    fs::path saved_file() const { return state_dir_ / installed::kLastGoodPolicy; }

    static constexpr std::string_view kBase = R"([[file]]
path = "/etc/shadow"
action = "audit"
[[exec]]
path = "/opt/tools/"
action = "audit"
[bpf]
mode = "deny"
allow = [{ path = "/usr/lib/systemd/systemd", pid1 = true }]
)";
    static constexpr std::string_view kLocal = R"(deny_write_exec = true
[[file]]
path = "/etc/shadow"
action = "deny"
[[exec]]
path = "/usr/bin/nc"
action = "deny"
)";

    TempDir dir_;
    fs::path policy_dir_ = dir_ / "policy.d";
    fs::path state_dir_ = dir_ / "state";
};

TEST_F(LastGoodPolicyTest, SaveThenLoadGivesTheSamePolicy) {
    CompiledPolicy compiled = good_directory();
    uint64_t before = now_seconds();
    ASSERT_OK(save_last_good_policy(state_dir_, compiled));
    uint64_t after = now_seconds();

    auto saved = load_last_good_policy(state_dir_);
    ASSERT_OK(saved);
    // The files, in merge order, named by the saved file and their own name.
    EXPECT_EQ(saved->policy.sources, (std::vector<std::string>{saved_file().string() + ":10-base.toml",
                                                               saved_file().string() + ":50-local.toml"}));
    EXPECT_EQ(saved->policy.source_texts, (std::vector<std::string>{std::string(kBase), std::string(kLocal)}));
    // Merged as the directory was: the later file's deny wins, its option holds.
    auto directory = load_policy_dir(policy_dir_);
    ASSERT_OK(directory);
    EXPECT_EQ(rules_of(saved->policy), rules_of(*directory));
    ASSERT_FALSE(saved->policy.rules.empty());
    EXPECT_EQ(saved->policy.rules[0].action, RuleAction::Deny);
    EXPECT_EQ(saved->policy.rules[0].where, (SourceLocation{saved_file().string() + ":50-local.toml", 3}));
    EXPECT_TRUE(saved->policy.options.deny_write_exec.value);
    EXPECT_EQ(saved->policy.bpf.mode, BpfGuardMode::Deny);
    EXPECT_GE(saved->saved, before);
    EXPECT_LE(saved->saved, after);

    // Compiled again, it fills the maps exactly as the directory did.
    auto recompiled = compile_policy(saved->policy, fake_resolver());
    ASSERT_OK(recompiled);
    EXPECT_EQ(rules_of(*recompiled), rules_of(compiled));
    EXPECT_EQ(recompiled->tables.file_rules.size(), compiled.tables.file_rules.size());
    EXPECT_EQ(recompiled->tables.settings.exec_options, compiled.tables.settings.exec_options);
}

TEST_F(LastGoodPolicyTest, TheFileIsTheDocumentedFormatWithADigestOfItsBody) {
    ASSERT_OK(save_last_good_policy(state_dir_, good_directory()));
    std::string text = read_text(saved_file());
    std::istringstream lines(text);
    std::string magic, digest_line, saved_line;
    std::getline(lines, magic);
    std::getline(lines, digest_line);
    std::getline(lines, saved_line);
    EXPECT_EQ(magic, "bpfwarden-last-good-policy 1");
    ASSERT_TRUE(digest_line.starts_with("digest "));
    ASSERT_TRUE(saved_line.starts_with("saved "));
    std::size_t body_at = magic.size() + digest_line.size() + saved_line.size() + 3;
    std::string body = text.substr(body_at);
    EXPECT_EQ(body, "file 10-base.toml " + std::to_string(kBase.size()) + "\n" + std::string(kBase) +
                        "file 50-local.toml " + std::to_string(kLocal.size()) + "\n" + std::string(kLocal));
    std::string digest = digest_line.substr(7);
    EXPECT_EQ(digest, sha256_of(saved_line + "\n" + body)) << "everything after the digest line";
    auto loaded = load_last_good_policy(state_dir_);
    ASSERT_OK(loaded);
    EXPECT_EQ(loaded->digest, sha256_of(body)) << "of the saved sources";

    struct stat st{};
    ASSERT_EQ(::stat(saved_file().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "policy texts are for root only";
}

TEST_F(LastGoodPolicyTest, SavingAgainReplacesTheFile) {
    ASSERT_OK(save_last_good_policy(state_dir_, good_directory()));
    dir_.write("policy.d/50-local.toml", "protect = false\n");
    auto edited = compile_policy_dir(policy_dir_, fake_resolver());
    ASSERT_OK(edited);
    ASSERT_OK(save_last_good_policy(state_dir_, *edited));
    auto saved = load_last_good_policy(state_dir_);
    ASSERT_OK(saved);
    EXPECT_EQ(saved->policy.source_texts.back(), "protect = false\n");
    EXPECT_FALSE(saved->policy.options.protect.value);
}

TEST_F(LastGoodPolicyTest, AnEmptyPolicyRoundTrips) {
    auto empty = compile_policy_dir(policy_dir_, fake_resolver());
    ASSERT_OK(empty);
    ASSERT_OK(save_last_good_policy(state_dir_, *empty));
    auto saved = load_last_good_policy(state_dir_);
    ASSERT_OK(saved);
    EXPECT_TRUE(saved->policy.sources.empty());
    EXPECT_TRUE(saved->policy.rules.empty());
    EXPECT_EQ(saved->digest, sha256_of(""));
}

TEST_F(LastGoodPolicyTest, NothingSavedIsENOENT) {
    auto saved = load_last_good_policy(state_dir_);
    EXPECT_ERRNO(saved, ENOENT);
    EXPECT_ERROR_MENTIONS(saved, saved_file().string());
}

TEST_F(LastGoodPolicyTest, AnEditedByteIsADigestMismatch) {
    ASSERT_OK(save_last_good_policy(state_dir_, good_directory()));
    std::string text = read_text(saved_file());
    std::size_t at = text.find("audit");
    ASSERT_NE(at, std::string::npos);
    text[at] = 'A';  // still a valid policy: only the digest can tell
    write_text(saved_file(), text);
    auto saved = load_last_good_policy(state_dir_);
    EXPECT_ERRNO(saved, EINVAL);
    EXPECT_EQ(saved.error().kind(), ErrorKind::PolicyInvalid);
    EXPECT_ERROR_MENTIONS(saved, saved_file().string() + ": damaged (digest mismatch)");
}

TEST_F(LastGoodPolicyTest, ATruncatedFileIsADigestMismatch) {
    ASSERT_OK(save_last_good_policy(state_dir_, good_directory()));
    std::string text = read_text(saved_file());
    write_text(saved_file(), text.substr(0, text.size() - 10));
    EXPECT_ERROR_MENTIONS(load_last_good_policy(state_dir_), saved_file().string() + ": damaged (digest mismatch)");
}

TEST_F(LastGoodPolicyTest, ABadHeaderIsRefused) {
    ASSERT_OK(save_last_good_policy(state_dir_, good_directory()));
    const std::string text = read_text(saved_file());
    std::size_t digest_at = text.find("\ndigest ") + 1;
    std::size_t saved_at = text.find("\nsaved ") + 1;
    std::size_t saved_end = text.find('\n', saved_at);
    const std::vector<std::pair<std::string, std::string>> damaged = {
        {"other magic", "bpfwarden-last-good-policy 2\n" + text.substr(digest_at)},
        {"no digest line", text.substr(0, digest_at) + text.substr(saved_at)},
        {"saved not a number", text.substr(0, saved_at) + "saved soon" + text.substr(saved_end)},
        {"empty", ""},
    };
    for (const auto& [what, bad] : damaged) {
        SCOPED_TRACE(what);
        write_text(saved_file(), bad);
        auto saved = load_last_good_policy(state_dir_);
        EXPECT_ERRNO(saved, EINVAL);
        EXPECT_ERROR_MENTIONS(saved, saved_file().string() + ": not a saved policy (bad header)");
    }
}

TEST_F(LastGoodPolicyTest, AnEntryLongerThanTheFileIsRefused) {
    // A body whose digest matches, but whose entry claims more bytes than follow.
    for (const std::string& body :
         {std::string("file 10-base.toml 100\nprotect = true\n"), std::string("file 10-base.toml\nprotect = true\n"),
          std::string("file 10-base.toml 1x\nprotect = true\n"), std::string("protect = true\n")}) {
        SCOPED_TRACE(body);
        write_text(saved_file(),
                   "bpfwarden-last-good-policy 1\ndigest " + sha256_of("saved 1\n" + body) + "\nsaved 1\n" + body);
        auto saved = load_last_good_policy(state_dir_);
        EXPECT_ERRNO(saved, EINVAL);
        EXPECT_ERROR_MENTIONS(saved, saved_file().string() + ": damaged file entry at byte ");
    }
}

TEST_F(LastGoodPolicyTest, AnInvalidSavedTextNamesTheFileAndTheEntry) {
    std::string entry = "[[file]]\npath = \"/etc/shadow\"\naction = \"denyy\"\n";
    std::string body = "file 10-base.toml " + std::to_string(entry.size()) + "\n" + entry;
    write_text(saved_file(),
               "bpfwarden-last-good-policy 1\ndigest " + sha256_of("saved 1\n" + body) + "\nsaved 1\n" + body);
    auto saved = load_last_good_policy(state_dir_);
    EXPECT_ERRNO(saved, EINVAL);
    EXPECT_ERROR_MENTIONS(saved, saved_file().string() + ":10-base.toml:3: unknown action 'denyy'");
}

// The header says the digest covers "everything after this line", which
// includes the `saved` line: an edited timestamp is damage like any other.
TEST_F(LastGoodPolicyTest, AnEditedSavedLineIsADigestMismatch) {
    ASSERT_OK(save_last_good_policy(state_dir_, good_directory()));
    std::string text = read_text(saved_file());
    std::size_t at = text.find("\nsaved ") + 7;
    text[at] = text[at] == '1' ? '2' : '1';
    write_text(saved_file(), text);
    EXPECT_ERROR_MENTIONS(load_last_good_policy(state_dir_), "digest mismatch");
}

// ---------------------------------------------------------------------------
// choose_policy

TEST_F(LastGoodPolicyTest, AValidDirectoryIsChosen) {
    CompiledPolicy compiled = good_directory();
    ASSERT_OK(save_last_good_policy(state_dir_, compiled));
    dir_.write("policy.d/60-more.toml", "[[file]]\npath = \"/etc/gshadow\"\naction = \"audit\"\n");
    auto chosen = choose_policy(policy_dir_, state_dir_, fake_resolver());
    ASSERT_OK(chosen);
    EXPECT_EQ(chosen->source, PolicySource::PolicyDirectory);
    EXPECT_FALSE(chosen->problem);
    EXPECT_EQ(chosen->policy.sources.size(), 3u) << "the directory now, not what was saved";
    auto directory = compile_policy_dir(policy_dir_, fake_resolver());
    ASSERT_OK(directory);
    EXPECT_TRUE(same_policy(chosen->policy, *directory));
}

TEST_F(LastGoodPolicyTest, AnInvalidDirectoryFallsBackToTheLastGoodPolicy) {
    CompiledPolicy compiled = good_directory();
    ASSERT_OK(save_last_good_policy(state_dir_, compiled));
    break_directory();
    auto chosen = choose_policy(policy_dir_, state_dir_, fake_resolver());
    ASSERT_OK(chosen);
    EXPECT_EQ(chosen->source, PolicySource::LastGood);
    ASSERT_TRUE(chosen->problem);
    EXPECT_EQ(chosen->problem->kind(), ErrorKind::PolicyInvalid);
    EXPECT_NE(chosen->problem->message().find((policy_dir_ / "50-local.toml").string() + ":3: unknown action 'denyy'"),
              std::string::npos)
        << chosen->problem->message();
    EXPECT_EQ(rules_of(chosen->policy), rules_of(compiled));
    EXPECT_EQ(chosen->policy.tables.settings.exec_options, compiled.tables.settings.exec_options);
    EXPECT_EQ(chosen->policy.source_texts, compiled.source_texts);
}

TEST_F(LastGoodPolicyTest, AMissingDirectoryFallsBackToo) {
    ASSERT_OK(save_last_good_policy(state_dir_, good_directory()));
    auto chosen = choose_policy(dir_ / "no-such-dir", state_dir_, fake_resolver());
    ASSERT_OK(chosen);
    EXPECT_EQ(chosen->source, PolicySource::LastGood);
    ASSERT_TRUE(chosen->problem);
    EXPECT_EQ(chosen->problem->errnum(), ENOENT);
}

TEST_F(LastGoodPolicyTest, NothingSavedFallsBackToTheShippedDefault) {
    break_directory();
    auto chosen = choose_policy(policy_dir_, state_dir_, fake_resolver());
    ASSERT_OK(chosen);
    EXPECT_EQ(chosen->source, PolicySource::ShippedDefault);
    ASSERT_TRUE(chosen->problem);
    EXPECT_NE(chosen->problem->message().find("unknown action 'denyy'"), std::string::npos);
    EXPECT_EQ(chosen->problem->message().find("last good"), std::string::npos)
        << "nothing saved is not a problem of its own: " << chosen->problem->message();

    auto shipped = shipped_default_policy();
    ASSERT_OK(shipped);
    auto expected = compile_policy(*shipped, fake_resolver());
    ASSERT_OK(expected);
    EXPECT_TRUE(same_policy(chosen->policy, *expected));
    EXPECT_EQ(chosen->policy.tables.bpf_policy.action, static_cast<uint32_t>(BW_ACTION_DENY));
    EXPECT_EQ(chosen->policy.tables.settings.protect, 1u);
}

TEST_F(LastGoodPolicyTest, ADamagedSavedPolicyFallsBackToTheShippedDefaultAndSaysBoth) {
    ASSERT_OK(save_last_good_policy(state_dir_, good_directory()));
    std::string text = read_text(saved_file());
    text.back() = text.back() == 'x' ? 'y' : 'x';
    write_text(saved_file(), text);
    break_directory();

    auto chosen = choose_policy(policy_dir_, state_dir_, fake_resolver());
    ASSERT_OK(chosen);
    EXPECT_EQ(chosen->source, PolicySource::ShippedDefault);
    ASSERT_TRUE(chosen->problem);
    const std::string message = chosen->problem->message();
    EXPECT_NE(message.find("unknown action 'denyy'"), std::string::npos) << message;
    EXPECT_NE(message.find("the last good policy is unusable too"), std::string::npos) << message;
    EXPECT_NE(message.find(saved_file().string() + ": damaged (digest mismatch)"), std::string::npos) << message;
    auto shipped = shipped_default_policy();
    ASSERT_OK(shipped);
    EXPECT_EQ(rules_of(chosen->policy), rules_of(*shipped));
}

TEST(ShippedDefaultPolicy, IsTheSourceTreesDefaultToml) {
    auto built_in = shipped_default_policy();
    ASSERT_OK(built_in);
    auto file = load_policy_file(source_tree_default_policy());
    ASSERT_OK(file);
    EXPECT_EQ(rules_of(*built_in), rules_of(*file));
    EXPECT_EQ(built_in->bpf.mode, file->bpf.mode);
    EXPECT_EQ(built_in->bpf.restricted_cmds, file->bpf.restricted_cmds);
    EXPECT_EQ(built_in->options.protect.value, file->options.protect.value);
    ASSERT_EQ(built_in->source_texts.size(), 1u);
    ASSERT_EQ(file->source_texts.size(), 1u);
    EXPECT_EQ(built_in->source_texts[0], file->source_texts[0]);
    EXPECT_EQ(built_in->sources, std::vector<std::string>{"(shipped default policy)"});
}

TEST(PolicySourceNames, ForStatusAndLogs) {
    EXPECT_EQ(to_string(PolicySource::PolicyDirectory), "policy directory");
    EXPECT_EQ(to_string(PolicySource::LastGood), "last good policy");
    EXPECT_EQ(to_string(PolicySource::ShippedDefault), "shipped default policy");
}

}  // namespace
}  // namespace bpfwarden
