#include "support/command_line.h"

#include <gtest/gtest.h>

#include <vector>

namespace bpfwarden {
namespace {

// A small program with one option of each sort.
class CommandLineTest : public ::testing::Test {
protected:
    CommandLineTest() : cli_("bwtest", "[OPTIONS]", "A test program.") {
        cli_.path("--policy-dir", dir_, "policy files");
        cli_.number<unsigned>("--rate-limit", rate_, 1, 1000, "events per second");
        cli_.choice("--mode", mode_, {"deny", "audit"}, "what to do");
        auto* once = cli_.flag("--once", once_, "run once");
        auto* check = cli_.flag("--check", check_, "check only");
        cli_.exclusive(once, check);
    }

    std::optional<int> parse(std::vector<std::string> args) {
        args.insert(args.begin(), "bwtest");
        std::vector<char*> argv;
        for (auto& arg : args)
            argv.push_back(arg.data());
        return cli_.parse(static_cast<int>(argv.size()), argv.data());
    }

    CommandLine cli_;
    std::filesystem::path dir_;
    unsigned rate_ = 64;
    std::string mode_ = "deny";
    bool once_ = false, check_ = false;
};

TEST_F(CommandLineTest, AcceptsWellFormedArguments) {
    EXPECT_EQ(parse({"--policy-dir", "/etc/x", "--rate-limit=10", "--mode", "audit", "--once"}), std::nullopt);
    EXPECT_EQ(dir_, "/etc/x");
    EXPECT_EQ(rate_, 10u);
    EXPECT_EQ(mode_, "audit");
    EXPECT_TRUE(once_);
}

TEST_F(CommandLineTest, MissingValueNamesTheOption) {
    EXPECT_EQ(parse({"--policy-dir"}), 2);
    EXPECT_EQ(cli_.last_error(), "--policy-dir: needs a value (DIR)");
    EXPECT_EQ(parse({"--policy-dir", "--once"}), 2);
    EXPECT_EQ(cli_.last_error(), "--policy-dir: needs a value (DIR)");
}

TEST_F(CommandLineTest, UnknownOptionSuggestsTheNearestOne) {
    EXPECT_EQ(parse({"--polcy-dir", "/x"}), 2);
    EXPECT_EQ(cli_.last_error(), "--polcy-dir: unknown option (did you mean --policy-dir?)");
    EXPECT_EQ(parse({"--frobnicate"}), 2);
    EXPECT_EQ(cli_.last_error(), "--frobnicate: unknown option");
}

TEST_F(CommandLineTest, OutOfRangeQuotesTheRangeTheHelpShows) {
    EXPECT_EQ(parse({"--rate-limit", "0"}), 2);
    EXPECT_EQ(cli_.last_error(), "--rate-limit: '0' is out of range (expected 1..1000)");
    EXPECT_EQ(parse({"--rate-limit", "12x"}), 2);
    EXPECT_EQ(cli_.last_error(), "--rate-limit: '12x' is not a whole number (expected 1..1000)");
    EXPECT_EQ(parse({"--rate-limit", "-3"}), 2);
    EXPECT_EQ(cli_.last_error(), "--rate-limit: '-3' is not a whole number (expected 1..1000)");
    EXPECT_NE(cli_.app().help().find("(1..1000; default 64)"), std::string::npos);
}

TEST_F(CommandLineTest, BadChoiceListsTheChoices) {
    EXPECT_EQ(parse({"--mode", "allow"}), 2);
    EXPECT_EQ(cli_.last_error(), "--mode: 'allow' is not one of deny, audit");
}

TEST_F(CommandLineTest, ConflictingOptionsAreNamed) {
    EXPECT_EQ(parse({"--once", "--check"}), 2);
    EXPECT_EQ(cli_.last_error(), "--once and --check cannot be used together");
}

TEST_F(CommandLineTest, UnexpectedArgumentIsNamed) {
    EXPECT_EQ(parse({"stray"}), 2);
    EXPECT_EQ(cli_.last_error(), "unexpected argument 'stray'");
}

TEST_F(CommandLineTest, HelpExitsZero) {
    testing::internal::CaptureStdout();
    EXPECT_EQ(parse({"--help"}), 0);
    std::string help = testing::internal::GetCapturedStdout();
    EXPECT_TRUE(help.starts_with("Usage: bwtest [OPTIONS]")) << help;
}

TEST(WholeNumberTest, Bounds) {
    EXPECT_EQ(check_whole_number("1", 1, 5), std::nullopt);
    EXPECT_EQ(check_whole_number("5", 1, 5), std::nullopt);
    EXPECT_TRUE(check_whole_number("6", 1, 5));
    EXPECT_TRUE(check_whole_number("", 1, 5));
    EXPECT_TRUE(check_whole_number("99999999999999999999999", 1, 5));
}

}  // namespace
}  // namespace bpfwarden
