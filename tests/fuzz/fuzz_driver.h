// What every fuzz target here shares (fuzz_driver.cpp): a structure-aware
// mutator, the libFuzzer custom-mutator hook, the bridge from GCC's
// coverage callbacks to libFuzzer's counters, and the standalone driver for
// machines without a libFuzzer runtime. tests/fuzz/CMakeLists.txt compiles
// fuzz_driver.cpp into each target; the target defines
// LLVMFuzzerTestOneInput() and fuzz_target() to say what its format is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bpfwarden::fuzz {

struct Target {
    const char* name;                      // "manifest_fuzz": prefixes messages
    std::span<const std::string> tokens;   // keywords, values, boundary cases
    std::span<const std::string> numbers;  // replacements for a run of digits
    std::string_view special_bytes;        // bytes the format's rules turn on
    std::string_view first_seed;           // when no seed is given (standalone)
    // The parser takes `input`: the standalone driver keeps such mutants.
    bool (*accepts)(std::string_view input);
};

// Defined by each target.
const Target& fuzz_target();

// A promise of the format does not hold: says which, and aborts (a crash
// libFuzzer reports with the input).
[[noreturn]] void broken_promise(const char* promise, const std::string& detail = {});

// Every byte printable ASCII: what an error may show without forging a log line.
bool printable_ascii(std::string_view text);

// Mutations that know a text format: its tokens, its numbers, its lines.
class Mutator {
public:
    explicit Mutator(uint64_t seed) : random_(seed) {}

    size_t below(size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(random_); }

    // `structured`: only token- and line-level mutations (libFuzzer brings
    // its own byte-level ones). `pool`: inputs whose lines may be spliced in.
    std::string mutate(std::string text, const std::vector<std::string>& pool, size_t max_len, bool structured);

private:
    void mutate_once(std::string& text, const std::vector<std::string>& pool, size_t max_len, bool structured);
    void replace_token(std::string& text);
    void shuffle_lines(std::string& text);
    void splice_lines(std::string& text, const std::vector<std::string>& pool);
    void rewrite_digits(std::string& text);
    void repeat_line(std::string& text, size_t position, size_t max_len);
    const std::string& token();

    std::mt19937_64 random_;
};

}  // namespace bpfwarden::fuzz
