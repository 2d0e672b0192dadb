#include "support/atomic_file.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "temp_dir.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

std::string content_of(const std::filesystem::path& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

size_t entries_in(const std::filesystem::path& dir) {
    return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
}

class AtomicFileTest : public ::testing::Test {
protected:
    TempDir temp_{"bpfwarden-atomic"};
    std::filesystem::path file_ = temp_.path() / "status.json";
    ReplaceCheck ours_ = [](std::string_view existing) { return existing.starts_with("{\"ours\""); };
};

TEST_F(AtomicFileTest, CreatesAndReplacesItsOwnFile) {
    ASSERT_OK(write_file_atomically(file_, "{\"ours\":1}\n", 0640, ours_));
    ASSERT_OK(write_file_atomically(file_, "{\"ours\":2}\n", 0640, ours_));
    EXPECT_EQ(content_of(file_), "{\"ours\":2}\n");
    EXPECT_EQ(entries_in(temp_.path()), 1u);  // no temporary file left behind
    EXPECT_EQ(
        std::filesystem::status(file_).permissions() & std::filesystem::perms::all,
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write | std::filesystem::perms::group_read);
}

TEST_F(AtomicFileTest, RefusesToReplaceSomebodyElsesFile) {
    std::ofstream(file_) << "root:x:0:0:root:/root:/bin/bash\n";
    EXPECT_ERRNO(write_file_atomically(file_, "{\"ours\":1}\n", 0644, ours_), EEXIST);
    EXPECT_ERROR_MENTIONS(write_file_atomically(file_, "x", 0644, ours_), "was not written by bpfwarden");
    EXPECT_EQ(content_of(file_), "root:x:0:0:root:/root:/bin/bash\n");
    EXPECT_EQ(entries_in(temp_.path()), 1u);
}

TEST_F(AtomicFileTest, RefusesDirectoriesAndSymlinks) {
    std::filesystem::create_directory(file_);
    EXPECT_ERRNO(write_file_atomically(file_, "x", 0644), EEXIST);
    std::filesystem::path link = temp_.path() / "link";
    std::filesystem::create_symlink(file_, link);
    EXPECT_ERRNO(write_file_atomically(link, "x", 0644), EEXIST);
    EXPECT_TRUE(std::filesystem::is_directory(file_));
}

}  // namespace
}  // namespace bpfwarden
