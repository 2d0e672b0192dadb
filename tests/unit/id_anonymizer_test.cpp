#include "trust/id_anonymizer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "support/event.h"
#include "temp_dir.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

IdAnonymizer with_salt(unsigned char fill) { return IdAnonymizer(std::vector<unsigned char>(32, fill)); }

Event sample_event() {
    Event event;
    event.kind = EventKind::Tamper;
    event.action = EventAction::Deny;
    event.pid = 812;
    event.tgid = 811;
    event.target_pid = 77;
    event.op = BW_OP_SIGNAL;
    event.bpf_cmd = 9;
    event.comm = "x pid=5 \"tgid\":6";
    event.path = "bpfwardend";
    return event;
}

TEST(IdAnonymizer, SameIdSameTokenOtherSaltOtherToken) {
    EXPECT_EQ(with_salt(1).token(812), with_salt(1).token(812));
    EXPECT_NE(with_salt(1).token(812), with_salt(1).token(813));
    EXPECT_NE(with_salt(1).token(812), with_salt(2).token(812));
    EXPECT_EQ(with_salt(1).token(812).size(), 2u + 12u);
    EXPECT_TRUE(with_salt(1).token(812).starts_with("h:"));
}

TEST(IdAnonymizer, JsonIdsBecomeTokensAndStringsStay) {
    IdAnonymizer anonymizer = with_salt(3);
    Event event = sample_event();
    std::string out = anonymizer.anonymize_json(format_event_json(event));
    EXPECT_NE(out.find("\"pid\":\"" + anonymizer.token(812) + "\""), std::string::npos) << out;
    EXPECT_NE(out.find("\"tgid\":\"" + anonymizer.token(811) + "\""), std::string::npos) << out;
    EXPECT_NE(out.find("\"target\":\"" + anonymizer.token(77) + "\""), std::string::npos) << out;
    EXPECT_EQ(out.find("812"), std::string::npos);
    EXPECT_NE(out.find(R"("comm":"x pid=5 \"tgid\":6")"), std::string::npos) << out;  // inside a string: untouched
    EXPECT_NE(out.find("\"uid\":0"), std::string::npos);
    EXPECT_NE(out.find("\"signal\":9"), std::string::npos);
}

TEST(IdAnonymizer, TextIdsBecomeTokensAndQuotedStringsStay) {
    IdAnonymizer anonymizer = with_salt(4);
    std::string out = anonymizer.anonymize_text(format_event_text(sample_event()));
    EXPECT_NE(out.find(" pid=" + anonymizer.token(812) + " "), std::string::npos) << out;
    EXPECT_NE(out.find(" tgid=" + anonymizer.token(811) + " "), std::string::npos) << out;
    EXPECT_NE(out.find(" target=" + anonymizer.token(77)), std::string::npos) << out;
    EXPECT_NE(out.find(R"(comm="x pid=5 \"tgid\":6")"), std::string::npos) << out;
    EXPECT_EQ(out.find("=812"), std::string::npos);
}

TEST(IdAnonymizer, SaltFileIsCreatedPrivateAndReadBack) {
    TempDir dir;
    auto path = dir.path() / "salt";
    auto first = IdAnonymizer::from_salt_file(path);
    ASSERT_OK(first);
    struct stat st{};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_size, 32);
    auto again = IdAnonymizer::from_salt_file(path);
    ASSERT_OK(again);
    EXPECT_EQ(first->token(1), again->token(1));
}

TEST(IdAnonymizer, SaltFileReadableByOthersOrOfTheWrongSizeIsRefused) {
    TempDir dir;
    auto path = dir.path() / "salt";
    std::ofstream(path) << std::string(32, 'x');
    chmod(path.c_str(), 0644);
    auto exposed = IdAnonymizer::from_salt_file(path);
    EXPECT_ERRNO(exposed, EPERM);
    EXPECT_ERROR_MENTIONS(exposed, "readable or writable by others");
    std::ofstream(path, std::ios::trunc) << "short";
    chmod(path.c_str(), 0600);
    auto short_salt = IdAnonymizer::from_salt_file(path);
    EXPECT_ERRNO(short_salt, EINVAL);
    EXPECT_ERROR_MENTIONS(short_salt, "holds 5 bytes, not 32");
}

}  // namespace
}  // namespace bpfwarden
