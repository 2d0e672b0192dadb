// What one core does with each event the kernel hands bpfwardend: decode the
// ring buffer record, sanitize and format it (text for the log, JSON for
// --json-events and the journal's BPFWARDEN_JSON), and log it (the stderr
// target, written to /dev/null). Google Benchmark; figures, no assertions.
//   event_pipeline_bench [--benchmark_min_time=0.2] ...
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "support/event.h"
#include "support/log.h"

namespace bpfwarden {
namespace {

bw_event base_event(uint32_t kind, uint32_t action) {
    bw_event raw{};
    raw.kind = kind;
    raw.action = action;
    raw.ts_ns = 123456789012;
    raw.pid = raw.tgid = 4242;
    raw.uid = raw.gid = 1000;
    raw.dev = 0x800001;
    raw.ino = 1234567;
    std::strncpy(raw.comm, "bash", sizeof(raw.comm) - 1);
    return raw;
}

std::vector<std::byte> bytes_of(const bw_event& raw) {
    const auto* begin = reinterpret_cast<const std::byte*>(&raw);
    return {begin, begin + sizeof(raw)};
}

// The audit trail's commonest record: an exec with a plain path.
std::vector<std::byte> exec_record() {
    bw_event raw = base_event(BW_EVENT_EXEC, BW_ACTION_NONE);
    std::strncpy(raw.path, "/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus", sizeof(raw.path) - 1);
    return bytes_of(raw);
}

std::vector<std::byte> bpf_call_record() {
    bw_event raw = base_event(BW_EVENT_BPF_CALL, BW_ACTION_NONE);
    raw.bpf_cmd = 5;  // BPF_PROG_LOAD
    std::strncpy(raw.path, "bpftool", sizeof(raw.path) - 1);
    return bytes_of(raw);
}

std::vector<std::byte> denial_record() {
    bw_event raw = base_event(BW_EVENT_FILE_OPEN, BW_ACTION_DENY);
    raw.rule_id = 7;
    raw.op = BW_OP_OPEN;
    std::strncpy(raw.path, "shadow", sizeof(raw.path) - 1);
    return bytes_of(raw);
}

// The worst case for sanitizing: a whole path of control bytes and invalid
// UTF-8, every byte escaped.
std::vector<std::byte> hostile_record() {
    bw_event raw = base_event(BW_EVENT_EXEC, BW_ACTION_NONE);
    for (size_t i = 0; i + 1 < sizeof(raw.path); ++i)
        raw.path[i] = static_cast<char>(i % 2 ? 0x1b : 0xff);
    std::memset(raw.comm, 0x07, sizeof(raw.comm) - 1);
    return bytes_of(raw);
}

std::vector<std::byte> record_for(int which) {
    switch (which) {
    case 0: return exec_record();
    case 1: return bpf_call_record();
    case 2: return denial_record();
    default: return hostile_record();
    }
}

const char* record_name(int which) {
    static const char* const kNames[] = {"exec", "bpf_call", "file_open deny", "hostile exec (every byte escaped)"};
    return kNames[which];
}

void BM_Decode(benchmark::State& state) {
    std::vector<std::byte> record = record_for(static_cast<int>(state.range(0)));
    state.SetLabel(record_name(static_cast<int>(state.range(0))));
    for (auto _ : state) {
        auto event = decode_event(record);
        benchmark::DoNotOptimize(event);
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_FormatText(benchmark::State& state) {
    auto event = decode_event(record_for(static_cast<int>(state.range(0))));
    state.SetLabel(record_name(static_cast<int>(state.range(0))));
    for (auto _ : state) {
        std::string line = format_event_text(*event, "/etc/shadow");
        benchmark::DoNotOptimize(line);
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_FormatJson(benchmark::State& state) {
    auto event = decode_event(record_for(static_cast<int>(state.range(0))));
    state.SetLabel(record_name(static_cast<int>(state.range(0))));
    for (auto _ : state) {
        std::string json = format_event_json(*event, "/etc/shadow");
        benchmark::DoNotOptimize(json);
    }
    state.SetItemsProcessed(state.iterations());
}

// Everything bpfwardend does for a logged event with the stderr target:
// decode, wall time, text line, log() (its stderr is /dev/null here).
void BM_DecodeFormatLog(benchmark::State& state) {
    std::vector<std::byte> record = record_for(static_cast<int>(state.range(0)));
    state.SetLabel(record_name(static_cast<int>(state.range(0))));
    for (auto _ : state) {
        auto event = decode_event(record);
        event->wall_time_usec = monotonic_to_wall_usec(event->ts_ns);
        log(LogLevel::Info, format_event_text(*event, {}));
    }
    state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Decode)->DenseRange(0, 3);
BENCHMARK(BM_FormatText)->DenseRange(0, 3);
BENCHMARK(BM_FormatJson)->DenseRange(0, 3);
BENCHMARK(BM_DecodeFormatLog)->DenseRange(0, 3);

}  // namespace
}  // namespace bpfwarden

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 2;
    // The log lines go nowhere; the benchmark's table goes to stdout.
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, STDERR_FILENO) < 0)
        return 1;
    bpfwarden::log_init("event_pipeline_bench", bpfwarden::LogTarget::Stderr);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
