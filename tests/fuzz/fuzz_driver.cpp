// The parts every fuzz target shares (fuzz_driver.h). Built three ways, as
// tests/fuzz/CMakeLists.txt chooses for the whole directory:
//   - clang with a libstdc++ <expected> it can compile: -fsanitize=fuzzer;
//   - g++ (the project's compiler) linked against clang's libFuzzer runtime,
//     with BPFWARDEN_FUZZ_GCC_COVERAGE_BRIDGE: GCC's -fsanitize-coverage=
//     trace-pc callbacks are fed into libFuzzer's 8-bit counters below;
//   - BPFWARDEN_FUZZ_STANDALONE when no libFuzzer runtime is available: a
//     small mutation driver (no coverage feedback) with libFuzzer's flags.
// Under libFuzzer, half of the mutations are the target's token- and
// line-level ones (LLVMFuzzerCustomMutator): coverage alone rarely leads
// byte flips to inputs that are valid but unusual ("version 07").
#include "fuzz_driver.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace bpfwarden::fuzz {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < text.size()) {
        const size_t end = text.find('\n', start);
        if (end == std::string::npos) {
            lines.push_back(text.substr(start));
            break;
        }
        lines.push_back(text.substr(start, end - start + 1));
        start = end + 1;
    }
    return lines;
}

std::string join(const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& line : lines)
        text += line;
    return text;
}

}  // namespace

void broken_promise(const char* promise, const std::string& detail) {
    std::fprintf(stderr, "%s: broken promise: %s%s%s\n", fuzz_target().name, promise, detail.empty() ? "" : ": ",
                 detail.c_str());
    std::abort();
}

bool printable_ascii(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::string Mutator::mutate(std::string text, const std::vector<std::string>& pool, size_t max_len, bool structured) {
    const size_t rounds = 1 + below(4);
    for (size_t i = 0; i < rounds; ++i) {
        mutate_once(text, pool, max_len, structured);
        if (text.size() > max_len)
            text.resize(max_len);
    }
    return text;
}

const std::string& Mutator::token() {
    const auto tokens = fuzz_target().tokens;
    return tokens[below(tokens.size())];
}

void Mutator::mutate_once(std::string& text, const std::vector<std::string>& pool, size_t max_len, bool structured) {
    const std::string_view special = fuzz_target().special_bytes;
    const size_t position = below(text.size() + 1);
    switch (structured ? 4 + below(8) : below(12)) {
    case 0:  // flip a bit
        if (!text.empty())
            text[below(text.size())] ^= static_cast<char>(1u << below(8));
        break;
    case 1:  // overwrite a byte
        if (!text.empty())
            text[below(text.size())] = special[below(special.size())];
        break;
    case 2:  // insert a byte
        text.insert(position, 1, below(2) ? special[below(special.size())] : static_cast<char>(below(256)));
        break;
    case 3:  // erase a run of bytes
        text.erase(std::min(position, text.size()), 1 + below(8));
        break;
    case 4: text.insert(position, token()); break;
    case 5: replace_token(text); break;
    case 6:
    case 7:
    case 8: shuffle_lines(text); break;
    case 9: splice_lines(text, pool); break;
    case 10: rewrite_digits(text); break;
    default: repeat_line(text, position, max_len); break;
    }
}

// Replaces the space-separated token around a random position.
void Mutator::replace_token(std::string& text) {
    if (text.empty())
        return;
    const size_t at = below(text.size());
    size_t start = text.find_last_of(" \n", at);
    start = start == std::string::npos ? 0 : start + 1;
    size_t end = text.find_first_of(" \n", at);
    end = end == std::string::npos ? text.size() : end;
    if (start <= end)
        text.replace(start, end - start, token());
}

// Duplicates, deletes or swaps lines.
void Mutator::shuffle_lines(std::string& text) {
    auto lines = split_lines(text);
    if (lines.empty())
        return;
    const size_t a = below(lines.size()), b = below(lines.size());
    if (lines.size() > 1 && below(3) == 0)
        lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(a));
    else if (below(2) == 0)
        lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(b), lines[a]);
    else
        std::swap(lines[a], lines[b]);
    text = join(lines);
}

// Splices in lines of another pool entry, or a token line.
void Mutator::splice_lines(std::string& text, const std::vector<std::string>& pool) {
    const auto other = pool.empty() ? std::vector<std::string>{token() + "\n"} : split_lines(pool[below(pool.size())]);
    if (other.empty())
        return;
    auto lines = split_lines(text);
    const size_t from = below(other.size());
    const size_t count = 1 + below(std::min<size_t>(other.size() - from, 8));
    lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(below(lines.size() + 1)),
                 other.begin() + static_cast<std::ptrdiff_t>(from),
                 other.begin() + static_cast<std::ptrdiff_t>(from + count));
    text = join(lines);
}

// Rewrites a run of digits: leading zeros, off by one, boundaries.
void Mutator::rewrite_digits(std::string& text) {
    const size_t at = text.find_first_of("0123456789", below(text.size() + 1));
    if (at == std::string::npos)
        return;
    const size_t end = std::min(text.find_first_not_of("0123456789", at), text.size());
    std::string digits = text.substr(at, end - at);
    const auto numbers = fuzz_target().numbers;
    switch (below(4)) {
    case 0: digits.insert(0, "0"); break;
    case 1: digits += static_cast<char>('0' + below(10)); break;
    case 2: digits.back() = static_cast<char>('0' + (digits.back() - '0' + 1 + below(9)) % 10); break;
    default:
        if (!numbers.empty())
            digits = numbers[below(numbers.size())];
        break;
    }
    text.replace(at, end - at, digits);
}

// Repeats a line many times: the limits.
void Mutator::repeat_line(std::string& text, size_t position, size_t max_len) {
    auto lines = split_lines(text);
    if (lines.empty())
        return;
    const std::string line = lines[below(lines.size())];
    const size_t room = max_len > text.size() ? (max_len - text.size()) / line.size() : 0;
    const size_t copies = 1 + below(std::min<size_t>(room, 300));
    std::string repeated;
    for (size_t i = 0; i < copies; ++i)
        repeated += line;
    text.insert(std::min(text.size(), position), repeated);
}

}  // namespace bpfwarden::fuzz

#if !defined(BPFWARDEN_FUZZ_STANDALONE)
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
    bpfwarden::fuzz::Mutator mutator(seed);
    if (mutator.below(2) == 0)
        return LLVMFuzzerMutate(data, size, max_size);
    const std::string mutated =
        mutator.mutate(std::string(reinterpret_cast<const char*>(data), size), {}, max_size, true);
    std::memcpy(data, mutated.data(), mutated.size());
    return mutated.size();
}
#endif

#if defined(BPFWARDEN_FUZZ_GCC_COVERAGE_BRIDGE)
// libFuzzer's runtime no longer accepts the plain trace-pc callback, the only
// edge instrumentation GCC emits; it takes 8-bit counters registered through
// __sanitizer_cov_8bit_counters_init. The link maps GCC's calls here
// (-Wl,--wrap=__sanitizer_cov_trace_pc) and this hashes (previous block,
// block) pairs into counters, as AFL does. trace-cmp needs no bridge: its
// callbacks are libFuzzer's own.
extern "C" void __sanitizer_cov_8bit_counters_init(uint8_t* start, uint8_t* stop);

namespace {

constexpr size_t kCounters = size_t{1} << 16;
alignas(64) uint8_t counters[kCounters];
thread_local uintptr_t previous_block;

__attribute__((constructor, no_sanitize_coverage)) void register_counters() {
    __sanitizer_cov_8bit_counters_init(counters, counters + kCounters);
}

}  // namespace

extern "C" __attribute__((no_sanitize_coverage, no_sanitize_address, no_sanitize_undefined)) void
__wrap___sanitizer_cov_trace_pc() {
    const auto pc = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
    const uintptr_t block = ((pc ^ (pc >> 17)) * 0x9e3779b97f4a7c15ULL) >> 48;
    uint8_t& counter = counters[(block ^ previous_block) & (kCounters - 1)];
    counter = static_cast<uint8_t>(counter + 1);
    previous_block = block >> 1;
}

// GCC's trace-cmp also reports floating-point comparisons, which libFuzzer
// has no callback for; the targets compare no floats of the input, but a
// header (toml++ reads floats) does.
extern "C" __attribute__((no_sanitize_coverage)) void __sanitizer_cov_trace_cmpf(float, float) {}
extern "C" __attribute__((no_sanitize_coverage)) void __sanitizer_cov_trace_cmpd(double, double) {}
#endif  // BPFWARDEN_FUZZ_GCC_COVERAGE_BRIDGE

#if defined(BPFWARDEN_FUZZ_STANDALONE)
// A bounded mutation fuzzer for machines without a libFuzzer runtime. It
// takes libFuzzer's command line (corpus directories or files, -runs=,
// -max_total_time=, -seed=, -max_len=, -artifact_prefix=; other flags are
// ignored), runs every seed, then mutates the pool -- seeds plus every
// mutant the parser accepted -- at byte, token and line level. Without
// coverage feedback it finds less than libFuzzer; docs/MANIFEST.md says how
// to get the real thing.

// Present when a sanitizer runtime is linked.
extern "C" __attribute__((weak)) void __sanitizer_set_death_callback(void (*callback)());

namespace {

using bpfwarden::fuzz::fuzz_target;

std::string current_input;
std::string artifact_prefix = "./";

void save_current_input() {
    uint64_t hash = 1469598103934665603ULL;
    for (const char c : current_input)
        hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    char name[32];
    std::snprintf(name, sizeof name, "crash-%016llx", static_cast<unsigned long long>(hash));
    const std::string path = artifact_prefix + name;
    if (FILE* out = std::fopen(path.c_str(), "wb")) {
        std::fwrite(current_input.data(), 1, current_input.size(), out);
        std::fclose(out);
        std::fprintf(stderr, "%s: crashing input written to %s\n", fuzz_target().name, path.c_str());
    }
}

extern "C" void on_deadly_signal(int signal) {
    save_current_input();
    std::signal(signal, SIG_DFL);
    std::raise(signal);
}

void add_seed(const std::filesystem::path& path, std::vector<std::string>& pool) {
    std::ifstream in(path, std::ios::binary);
    pool.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void add_seeds(std::string_view arg, std::vector<std::string>& pool) {
    if (!std::filesystem::is_directory(arg)) {
        add_seed(arg, pool);
        return;
    }
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(arg))
        if (entry.is_regular_file())
            files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files)
        add_seed(file, pool);
}

bool flag_value(std::string_view arg, std::string_view name, std::string& value) {
    if (!arg.starts_with(name) || arg.size() <= name.size() || arg[name.size()] != '=')
        return false;
    value = std::string(arg.substr(name.size() + 1));
    return true;
}

struct Options {
    uint64_t runs = 0;  // 0: until the time is up
    double max_total_time = 0;
    uint64_t seed = std::random_device{}();
    size_t max_len = 16384;
    std::vector<std::string> pool;
};

Options parse_command_line(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        std::string value;
        if (flag_value(arg, "-runs", value))
            options.runs = std::strtoull(value.c_str(), nullptr, 10);
        else if (flag_value(arg, "-max_total_time", value))
            options.max_total_time = std::strtod(value.c_str(), nullptr);
        else if (flag_value(arg, "-seed", value))
            options.seed = std::strtoull(value.c_str(), nullptr, 10);
        else if (flag_value(arg, "-max_len", value))
            options.max_len = std::strtoull(value.c_str(), nullptr, 10);
        else if (flag_value(arg, "-artifact_prefix", value))
            artifact_prefix = value;
        else if (arg.starts_with("-"))
            std::fprintf(stderr, "%s: ignoring %s (standalone driver)\n", fuzz_target().name, argv[i]);
        else
            add_seeds(arg, options.pool);
    }
    if (options.runs == 0 && options.max_total_time <= 0)
        options.max_total_time = 10;
    if (options.pool.empty())
        options.pool.emplace_back(fuzz_target().first_seed);
    return options;
}

void save_input_on_crash() {
    std::signal(SIGABRT, on_deadly_signal);
    std::signal(SIGSEGV, on_deadly_signal);
    std::signal(SIGILL, on_deadly_signal);
    std::signal(SIGFPE, on_deadly_signal);
    // AddressSanitizer ends the process with _exit, not a signal.
    if (&__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(save_current_input);
}

void run(const std::string& input) {
    current_input = input;
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

}  // namespace

int main(int argc, char** argv) {
    Options options = parse_command_line(argc, argv);
    std::vector<std::string>& pool = options.pool;
    save_input_on_crash();
    std::fprintf(stderr, "%s: standalone driver, seed %llu, %zu seed inputs\n", fuzz_target().name,
                 static_cast<unsigned long long>(options.seed), pool.size());
    for (const auto& input : std::vector<std::string>(pool))
        run(input);

    bpfwarden::fuzz::Mutator mutator(options.seed);
    const auto start = std::chrono::steady_clock::now();
    const auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    uint64_t done = 0, accepted = 0;
    while ((options.runs == 0 || done < options.runs) &&
           (options.max_total_time <= 0 || elapsed() < options.max_total_time)) {
        std::string input = mutator.mutate(pool[mutator.below(pool.size())], pool, options.max_len, false);
        run(input);
        ++done;
        if (fuzz_target().accepts(input)) {
            ++accepted;
            if (pool.size() < 4096)
                pool.push_back(std::move(input));
        }
        if ((done & (done - 1)) == 0 && done >= 1024)
            std::fprintf(stderr, "#%llu\taccepted: %llu\tpool: %zu\t%.0f s\n", static_cast<unsigned long long>(done),
                         static_cast<unsigned long long>(accepted), pool.size(), elapsed());
    }
    std::fprintf(stderr, "Done %llu runs in %.0f second(s), %llu accepted\n", static_cast<unsigned long long>(done),
                 elapsed(), static_cast<unsigned long long>(accepted));
    return 0;
}
#endif  // BPFWARDEN_FUZZ_STANDALONE
