// A fresh directory under $TMPDIR for one test, removed with everything in
// it when the test ends, pass or fail.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace bpfwarden {

class TempDir {
public:
    explicit TempDir(std::string_view prefix = "bpfwarden-test") {
        std::string pattern = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
        if (::mkdtemp(pattern.data()) == nullptr)
            ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

    // Writes `text` to `name` in the directory and returns its path.
    std::filesystem::path write(const std::string& name, std::string_view text) const {
        std::filesystem::path file = path_ / name;
        std::ofstream out(file, std::ios::binary);
        out << text;
        EXPECT_TRUE(out.good()) << "writing " << file;
        return file;
    }

    // Creates an empty file.
    std::filesystem::path touch(const std::string& name) const { return write(name, ""); }

private:
    std::filesystem::path path_;
};

}  // namespace bpfwarden
