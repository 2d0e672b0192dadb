#include "support/event_filter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>

namespace bpfwarden {
namespace {

constexpr uint64_t kNow = 1796305200000000;  // 2026-12-03T13:40:00Z

bool has(const std::vector<std::string>& matches, const std::string& match) {
    return std::find(matches.begin(), matches.end(), match) != matches.end();
}

TEST(EventFilter, WithoutAKindEveryKindIsListedSoThatOnlyEventsMatch) {
    auto matches = EventFilter{}.journal_matches();
    EXPECT_EQ(matches.size(), event_kind_names().size());
    EXPECT_TRUE(has(matches, "BPFWARDEN_EVENT=file_open"));
    EXPECT_TRUE(has(matches, "BPFWARDEN_EVENT=tamper"));
}

TEST(EventFilter, EachFilterBecomesOneMatchOnItsField) {
    EventFilter filter;
    filter.kind = "exec_check";
    filter.action = "deny";
    filter.pid = 42;
    filter.uid = 0;
    filter.comm = "cat";
    auto matches = filter.journal_matches();
    EXPECT_EQ(matches, (std::vector<std::string>{"BPFWARDEN_EVENT=exec_check", "BPFWARDEN_ACTION=deny",
                                                 "BPFWARDEN_TGID=42", "BPFWARDEN_UID=0", "BPFWARDEN_COMM=cat"}));
}

TEST(EventFilter, SinceComparesTheEventsOwnTime) {
    EventFilter filter;
    EXPECT_TRUE(filter.accepts_time(0));
    filter.since_usec = kNow;
    EXPECT_FALSE(filter.accepts_time(kNow - 1));
    EXPECT_TRUE(filter.accepts_time(kNow));
}

TEST(EventFilter, CommOfFifteenBytesIsAcceptedAndSixteenRefused) {
    EXPECT_EQ(check_comm_filter("abcdefghijklmno").value_or(""), "abcdefghijklmno");
    auto too_long = check_comm_filter("abcdefghijklmnop");
    ASSERT_FALSE(too_long);
    EXPECT_NE(too_long.error().message().find("16 bytes; the kernel keeps at most 15"), std::string::npos);
}

TEST(EventFilter, CommWithCharactersOutsideTheSafeSetIsRefused) {
    for (const char* bad : {"a b", "a/b", "a\"b", "a\nb", "é", "a*"})
        EXPECT_FALSE(check_comm_filter(bad)) << bad;
    EXPECT_TRUE(check_comm_filter("kworker_1.2-x"));
    EXPECT_FALSE(check_comm_filter(""));
}

TEST(EventFilter, CommErrorShowsControlCharactersEscaped) {
    auto error = check_comm_filter("a\x1b[31m");
    ASSERT_FALSE(error);
    EXPECT_EQ(error.error().message().find('\x1b'), std::string::npos);
}

TEST(EventFilter, SinceRelative) {
    EXPECT_EQ(parse_since("-10min", kNow).value_or(0), kNow - 600000000);
    EXPECT_EQ(parse_since("-2h", kNow).value_or(0), kNow - 7200000000);
    EXPECT_EQ(parse_since("-30s", kNow).value_or(0), kNow - 30000000);
    EXPECT_EQ(parse_since("-1d", kNow).value_or(0), kNow - 86400000000);
    EXPECT_EQ(parse_since("-0s", kNow).value_or(1), kNow);
}

TEST(EventFilter, SinceEpochSeconds) { EXPECT_EQ(parse_since("@1796305200", kNow).value_or(0), kNow); }

TEST(EventFilter, SinceCalendarIsLocalTime) {
    struct tm local{};
    local.tm_year = 2026 - 1900;
    local.tm_mon = 11;
    local.tm_mday = 3;
    local.tm_hour = 13;
    local.tm_min = 40;
    local.tm_sec = 5;
    local.tm_isdst = -1;
    uint64_t expected = static_cast<uint64_t>(mktime(&local)) * 1000000;
    EXPECT_EQ(parse_since("2026-12-03 13:40:05", kNow).value_or(0), expected);
    EXPECT_EQ(parse_since("2026-12-03T13:40:05", kNow).value_or(0), expected);
    EXPECT_EQ(parse_since("2026-12-03 13:40", kNow).value_or(0), expected - 5000000);
    EXPECT_TRUE(parse_since("2026-12-03", kNow));
}

TEST(EventFilter, SinceRejectsWhatItCannotRead) {
    for (const char* bad : {"", "yesterday", "-10", "-10m", "-min", "--5s", "@", "@abc", "2026-13-45",
                            "2026-12-03 25:00", "2026-12-03x", "-99999999999d", "10min"}) {
        auto since = parse_since(bad, kNow);
        EXPECT_FALSE(since) << bad;
        if (!since) {
            EXPECT_NE(since.error().message().find("is not a time"), std::string::npos);
        }
    }
}

TEST(EventFilter, KindAndActionNamesAreTheDecodersNames) {
    EXPECT_TRUE(has(event_kind_names(), "bpf_call"));
    EXPECT_TRUE(has(event_kind_names(), "file_change"));
    EXPECT_EQ(event_action_names(), (std::vector<std::string>{"none", "audit", "deny", "would-deny"}));
}

}  // namespace
}  // namespace bpfwarden
