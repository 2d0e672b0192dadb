// What a path names, on real files: identity_of() against stat() and the
// filesystem's own generation ioctl, and resolve_path() for files,
// directories, symlinks and paths that do not exist (yet).
#include "policy/file_identity.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "support/unique_fd.h"
#include "temp_dir.h"
#include "test_helpers.h"

namespace bpfwarden {

// Readable failures: gtest would print these as raw bytes, padding included.
// (In bpfwarden itself, where argument-dependent lookup finds them.)
static void PrintTo(const FileIdentity& identity, std::ostream* os) {
    *os << "{dev " << (identity.dev >> 20) << ":" << (identity.dev & 0xfffff) << ", ino " << identity.ino << ", gen "
        << identity.gen << (identity.is_dir ? ", dir}" : "}");
}

static void PrintTo(const PathTarget& target, std::ostream* os) {
    *os << "{file ";
    if (target.file)
        PrintTo(*target.file, os);
    else
        *os << "errno " << target.file_error;
    *os << ", dir ";
    if (target.dir)
        PrintTo(*target.dir, os);
    else
        *os << "errno " << target.dir_error;
    *os << ", name '" << target.name << "', canonical '" << target.canonical << "'}";
}

namespace {

namespace fs = std::filesystem;

struct stat stat_of(const fs::path& path) {
    struct stat st{};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
    return st;
}

// The generation as the filesystem reports it (FS_IOC_GETVERSION), where the
// programs read one at all: nullopt when the filesystem keeps none for us.
std::optional<uint32_t> filesystem_generation(const fs::path& path) {
    struct statfs info{};
    if (::statfs(path.c_str(), &info) != 0)
        return std::nullopt;
    constexpr long kF2fsMagic = 0xF2F52010;
    long magic = static_cast<long>(info.f_type);
    if (magic != EXT4_SUPER_MAGIC && magic != XFS_SUPER_MAGIC && magic != BTRFS_SUPER_MAGIC && magic != kF2fsMagic)
        return std::nullopt;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    int version = 0;
    if (!fd || ::ioctl(fd.get(), FS_IOC_GETVERSION, &version) != 0)
        return std::nullopt;
    return static_cast<uint32_t>(version);
}

// Runs `check` (0: success, another code naming the failed step) without
// privileges: in a child dropped to nobody when the tests run as root.
// Returns -1 if that is impossible.
int run_unprivileged(const std::function<int()>& check) {
    if (::geteuid() != 0)
        return check();
    pid_t pid = ::fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        constexpr uid_t kNobody = 65534;
        if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)
            ::_exit(255);
        ::_exit(check());
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) == 255)
        return -1;
    return WEXITSTATUS(status);
}

// ---------------------------------------------------------------------------
// kernel_dev / to_key

TEST(FileIdentity, KernelDevEncoding) {
    EXPECT_EQ(kernel_dev(makedev(8, 1)), (uint64_t{8} << 20) | 1);
    EXPECT_EQ(kernel_dev(makedev(259, 3)), (uint64_t{259} << 20) | 3);
    EXPECT_EQ(kernel_dev(makedev(0, 0)), 0u);
    // Minors above 255 live in different bits of the glibc dev_t; the kernel
    // keeps 20 bits of minor.
    EXPECT_EQ(kernel_dev(makedev(0, 0x12345)), uint64_t{0x12345});
    EXPECT_EQ(kernel_dev(makedev(4095, 0xfffff)), (uint64_t{4095} << 20) | 0xfffff);
}

TEST(FileIdentity, ToKeyCopiesEveryFieldAndMarksDirectories) {
    bw_inode_key key = to_key(FileIdentity{0x800001, 0x1122334455667788, 0xdeadbeef, true});
    EXPECT_EQ(key.dev, 0x800001u);
    EXPECT_EQ(key.ino, 0x1122334455667788u);
    EXPECT_EQ(key.gen, 0xdeadbeefu);
    EXPECT_EQ(key.is_dir, 1u);
    EXPECT_EQ(to_key(FileIdentity{0x800001, 7, 0, false}).is_dir, 0u);
}

// ---------------------------------------------------------------------------
// identity_of

TEST(FileIdentity, IdentityOfAFile) {
    TempDir dir;
    fs::path file = dir.touch("file");
    struct stat st = stat_of(file);
    auto identity = identity_of(file);
    ASSERT_OK(identity);
    EXPECT_EQ(identity->dev, kernel_dev(st.st_dev));
    EXPECT_EQ(identity->dev >> 20, major(st.st_dev));
    EXPECT_EQ(identity->dev & 0xfffff, minor(st.st_dev));
    EXPECT_EQ(identity->ino, static_cast<uint64_t>(st.st_ino));
    EXPECT_FALSE(identity->is_dir);
    if (auto gen = filesystem_generation(file)) {
        EXPECT_EQ(identity->gen, *gen);
    }
}

TEST(FileIdentity, IdentityOfADirectory) {
    TempDir dir;
    fs::create_directory(dir / "sub");
    struct stat st = stat_of(dir / "sub");
    auto identity = identity_of(dir / "sub");
    ASSERT_OK(identity);
    EXPECT_EQ(identity->dev, kernel_dev(st.st_dev));
    EXPECT_EQ(identity->ino, static_cast<uint64_t>(st.st_ino));
    EXPECT_TRUE(identity->is_dir);
    if (auto gen = filesystem_generation(dir / "sub")) {
        EXPECT_EQ(identity->gen, *gen);
    }
}

TEST(FileIdentity, GenerationIsZeroWhereTheProgramsReadNone) {
    // tmpfs keeps a generation of its own, but the programs do not read it
    // there: user space must not either, or no key would ever match.
    struct statfs info{};
    if (::statfs("/dev/shm", &info) != 0 || info.f_type != TMPFS_MAGIC)
        GTEST_SKIP() << "no tmpfs at /dev/shm";
    char pattern[] = "/dev/shm/bpfwarden-test-XXXXXX";
    int fd = ::mkstemp(pattern);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ::close(fd);
    auto identity = identity_of(pattern);
    ::unlink(pattern);
    ASSERT_OK(identity);
    EXPECT_EQ(identity->gen, 0u);
}

TEST(FileIdentity, ReplacedFileHasAnotherIdentity) {
    TempDir dir;
    fs::path file = dir.write("file", "old");
    auto before = identity_of(file);
    ASSERT_OK(before);
    dir.write("file.new", "new");
    fs::rename(dir / "file.new", file);
    auto after = identity_of(file);
    ASSERT_OK(after);
    EXPECT_NE(*before, *after);
    EXPECT_EQ(after->ino, static_cast<uint64_t>(stat_of(file).st_ino));
}

TEST(FileIdentity, HardLinksAndSymlinksNameOneIdentity) {
    TempDir dir;
    fs::path original = dir.touch("original");
    ASSERT_EQ(::link(original.c_str(), (dir / "linked").c_str()), 0) << std::strerror(errno);
    fs::create_symlink(original, dir / "symlink");
    auto identity = identity_of(original);
    ASSERT_OK(identity);
    auto linked = identity_of(dir / "linked");
    ASSERT_OK(linked);
    auto followed = identity_of(dir / "symlink");
    ASSERT_OK(followed);
    EXPECT_EQ(*linked, *identity);
    EXPECT_EQ(*followed, *identity);
    struct stat link_st{};
    ASSERT_EQ(::lstat((dir / "symlink").c_str(), &link_st), 0);
    EXPECT_NE(followed->ino, static_cast<uint64_t>(link_st.st_ino));
}

TEST(FileIdentity, ErrorsCarryTheErrnoAndNameThePath) {
    TempDir dir;
    auto missing = identity_of(dir / "missing");
    EXPECT_ERRNO(missing, ENOENT);
    EXPECT_ERROR_MENTIONS(missing, (dir / "missing").string());

    fs::path file = dir.touch("plain");
    EXPECT_ERRNO(identity_of(file / "below"), ENOTDIR);

    fs::create_symlink(dir / "loop", dir / "loop");
    EXPECT_ERRNO(identity_of(dir / "loop"), ELOOP);

    fs::create_symlink(dir / "gone", dir / "dangling");
    EXPECT_ERRNO(identity_of(dir / "dangling"), ENOENT);
}

TEST(FileIdentity, UnsearchableDirectoryIsEACCES) {
    TempDir dir;
    fs::create_directory(dir / "closed");
    fs::path inside = dir.touch("closed/file");
    ASSERT_EQ(::chmod((dir / "closed").c_str(), 0), 0);
    ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
    int code = run_unprivileged([&] {
        auto identity = identity_of(inside);
        if (identity)
            return 1;
        return identity.error().errnum() == EACCES ? 0 : 2;
    });
    ::chmod((dir / "closed").c_str(), 0700);  // so that the temp directory can be removed
    if (code < 0)
        GTEST_SKIP() << "cannot drop privileges";
    EXPECT_EQ(code, 0) << "1: resolved, 2: other errno";
}

// ---------------------------------------------------------------------------
// resolve_path

class ResolvePath : public ::testing::Test {
protected:
    FileIdentity identity(const fs::path& path) const {
        auto found = identity_of(path);
        EXPECT_TRUE(found.has_value()) << path;
        return found.value_or(FileIdentity{});
    }
    // The real path of the temp directory ($TMPDIR may itself be a symlink).
    fs::path real(const fs::path& path) const { return fs::canonical(path); }

    TempDir dir_;
};

TEST_F(ResolvePath, ExistingFileGivesFileDirectoryAndName) {
    fs::path file = dir_.touch("shadow");
    PathTarget target = resolve_path(file.string());
    ASSERT_TRUE(target.file);
    ASSERT_TRUE(target.dir);
    EXPECT_EQ(*target.file, identity(file));
    EXPECT_EQ(*target.dir, identity(dir_.path()));
    EXPECT_TRUE(target.dir->is_dir);
    EXPECT_EQ(target.name, "shadow");
    EXPECT_EQ(target.canonical, real(file).string());
    EXPECT_EQ(target.file_error, 0);
    EXPECT_EQ(target.dir_error, 0);
}

TEST_F(ResolvePath, ExistingDirectoryIsTheFileAndItsParentTheDirectory) {
    fs::create_directories(dir_ / "srv/secret");
    PathTarget target = resolve_path((dir_ / "srv/secret").string());
    ASSERT_TRUE(target.file);
    EXPECT_TRUE(target.file->is_dir);
    EXPECT_EQ(*target.file, identity(dir_ / "srv/secret"));
    ASSERT_TRUE(target.dir);
    EXPECT_EQ(*target.dir, identity(dir_ / "srv"));
    EXPECT_EQ(target.name, "secret");
}

TEST_F(ResolvePath, SymlinkResolvesToTheTargetsEntry) {
    fs::create_directory(dir_ / "real");
    fs::create_directory(dir_ / "alternatives");
    fs::path target_file = dir_.touch("real/nc.openbsd");
    fs::create_symlink(target_file, dir_ / "alternatives" / "nc");
    fs::create_symlink(dir_ / "alternatives" / "nc", dir_ / "nc");  // two hops

    PathTarget target = resolve_path((dir_ / "nc").string());
    ASSERT_TRUE(target.file);
    ASSERT_TRUE(target.dir);
    EXPECT_EQ(*target.file, identity(target_file));
    EXPECT_EQ(*target.dir, identity(dir_ / "real"));
    EXPECT_EQ(target.name, "nc.openbsd");
    EXPECT_EQ(target.canonical, real(target_file).string());
}

TEST_F(ResolvePath, SymlinkedDirectoryOnTheWayIsResolved) {
    fs::create_directory(dir_ / "real");
    fs::create_directory_symlink(dir_ / "real", dir_ / "via");
    PathTarget target = resolve_path((dir_ / "via" / "later").string());
    EXPECT_FALSE(target.file);
    EXPECT_EQ(target.file_error, ENOENT);
    ASSERT_TRUE(target.dir);
    EXPECT_EQ(*target.dir, identity(dir_ / "real"));
    EXPECT_EQ(target.name, "later");
    EXPECT_EQ(target.canonical, (real(dir_ / "real") / "later").string());
}

TEST_F(ResolvePath, MissingFileInAnExistingDirectoryKeepsTheDirectory) {
    PathTarget target = resolve_path((dir_ / "not-yet").string());
    EXPECT_FALSE(target.file);
    EXPECT_EQ(target.file_error, ENOENT);
    ASSERT_TRUE(target.dir);
    EXPECT_EQ(*target.dir, identity(dir_.path()));
    EXPECT_EQ(target.dir_error, 0);
    EXPECT_EQ(target.name, "not-yet");
    EXPECT_EQ(target.canonical, (real(dir_.path()) / "not-yet").string());
}

TEST_F(ResolvePath, MissingDirectoryHasNeitherAndSaysWhy) {
    PathTarget target = resolve_path((dir_ / "opt/x/bin/tool").string());
    EXPECT_FALSE(target.file);
    EXPECT_FALSE(target.dir);
    EXPECT_EQ(target.file_error, ENOENT);
    EXPECT_EQ(target.dir_error, ENOENT);
    EXPECT_EQ(target.name, "tool");
}

TEST_F(ResolvePath, PathBelowAFileIsENOTDIR) {
    fs::path file = dir_.touch("plain");
    PathTarget target = resolve_path((file / "below").string());
    EXPECT_FALSE(target.file);
    EXPECT_EQ(target.file_error, ENOTDIR);
    EXPECT_EQ(target.name, "below");
}

// The directory a name is in must be a directory: a path below a regular
// file ("/etc/shadow/x", a typo) names nothing that can ever exist, so the
// rule should be inactive with a warning.
TEST_F(ResolvePath, PathBelowAFileHasNoDirectory) {
    fs::path file = dir_.touch("plain");
    PathTarget target = resolve_path((file / "below").string());
    EXPECT_FALSE(target.dir) << "a regular file is not a directory";
    EXPECT_EQ(target.dir_error, ENOTDIR);
}

TEST_F(ResolvePath, SymlinkLoopIsELOOP) {
    fs::create_symlink(dir_ / "loop", dir_ / "loop");
    PathTarget target = resolve_path((dir_ / "loop").string());
    EXPECT_FALSE(target.file);
    EXPECT_EQ(target.file_error, ELOOP);
}

TEST_F(ResolvePath, ResolvingTwiceGivesTheSameTarget) {
    fs::path file = dir_.touch("stable");
    EXPECT_EQ(resolve_path(file.string()), resolve_path(file.string()));
    EXPECT_EQ(resolve_path((dir_ / "absent").string()), resolve_path((dir_ / "absent").string()));
}

TEST_F(ResolvePath, UnsearchableDirectoryGivesEACCES) {
    fs::create_directories(dir_ / "closed" / "sub");
    dir_.touch("closed/file");
    ASSERT_EQ(::chmod((dir_ / "closed").c_str(), 0), 0);
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
    std::string in_closed = (dir_ / "closed" / "file").string();
    std::string below_closed = (dir_ / "closed" / "sub" / "file").string();
    int code = run_unprivileged([&] {
        // The directory itself can be looked at; what is in it cannot.
        PathTarget file = resolve_path(in_closed);
        if (file.file || file.file_error != EACCES)
            return 1;
        if (!file.dir || !file.dir->is_dir || file.dir_error != 0)
            return 2;
        PathTarget deeper = resolve_path(below_closed);
        if (deeper.file || deeper.dir)
            return 3;
        return deeper.file_error == EACCES && deeper.dir_error == EACCES ? 0 : 4;
    });
    ::chmod((dir_ / "closed").c_str(), 0700);  // so that the temp directory can be removed
    if (code < 0)
        GTEST_SKIP() << "cannot drop privileges";
    EXPECT_EQ(code, 0) << "1: file resolved or other errno, 2: directory not found, 3: deeper resolved, 4: other errno";
}

// The programs see a file at its real entry (header: "Symlinks are resolved,
// the last one too"). A dangling symlink names where its target will be
// created; keying the symlink's own name instead covers nothing once the
// target appears.
TEST_F(ResolvePath, DanglingSymlinkNamesWhereItsTargetWillBe) {
    fs::create_directory(dir_ / "real");
    fs::create_symlink(dir_ / "real" / "not-installed", dir_ / "tool");
    PathTarget target = resolve_path((dir_ / "tool").string());
    EXPECT_FALSE(target.file);
    ASSERT_TRUE(target.dir);
    EXPECT_EQ(*target.dir, identity(dir_ / "real"));
    EXPECT_EQ(target.name, "not-installed");
}

}  // namespace
}  // namespace bpfwarden
