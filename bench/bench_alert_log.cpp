// SPDX-License-Identifier: MIT
// The alert log: append + commit throughput by batch size (one fdatasync per commit), and how
// fast open() replays a log of 100,000 alerts. Runs in a temp dir (on the file system of
// $TMPDIR or /tmp: fsync costs depend on it).
#include "alert_log.h"

#include <benchmark/benchmark.h>

#include <array>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace
{
namespace fs = std::filesystem;

fs::path fresh_dir(const char* what)
{
    fs::path d =
        fs::temp_directory_path() / ("ga-bench-alog-" + std::to_string(::getpid()) + "-" + what);
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

const std::string kAlert = R"({"machine":{"temperature":31.5,"pressure":1.2},)"
                           R"("ambient":{"temperature":21.4,"humidity":25},"timeCreated":)"
                           R"("2024-01-01T00:00:00Z"})";

void BM_AppendCommit(benchmark::State& state)
{
    const auto batch = static_cast<int>(state.range(0));
    const fs::path d = fresh_dir("append");
    ga::AlertLogLimits l;
    ga::AlertLog log(l);
    std::string err;
    if (!log.open(d.string(), 0, err))
    {
        state.SkipWithError(err.c_str());
        return;
    }
    std::uint64_t seq = 0;
    std::int64_t records = 0;
    std::int64_t ms = 0;
    for ([[maybe_unused]] auto _ : state)
    {
        for (int i = 0; i < batch; ++i)
            (void)log.append(kAlert, ga::AlertLog::Policy::DropOldest, 0, seq);
        if (!log.commit())
            state.SkipWithError("commit failed");
        records += batch;
        // Everything is sent and acknowledged at once so the log stays small, as with a live hub;
        // maintain() runs once per batch here (the agent: once a second).
        log.rewind_unsent();
        std::array<char, 512> buf{};
        std::size_t len = 0;
        while (log.next_unsent(seq, buf, len))
            log.ack(seq);
        log.maintain(++ms, 0); // the watermark is written about once a second of this clock
    }
    state.counters["records/s"] =
        benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
    state.counters["fsyncs/s"] =
        benchmark::Counter(static_cast<double>(log.commits()), benchmark::Counter::kIsRate);
    fs::remove_all(d);
}
BENCHMARK(BM_AppendCommit)->Arg(1)->Arg(16)->Arg(256)->UseRealTime();

void BM_Replay100k(benchmark::State& state)
{
    const fs::path d = fresh_dir("replay");
    {
        ga::AlertLog log(ga::AlertLogLimits{});
        std::string err;
        if (!log.open(d.string(), 0, err))
            state.SkipWithError(err.c_str());
        std::uint64_t seq = 0;
        for (int i = 0; i < 100000; ++i)
            (void)log.append(kAlert, ga::AlertLog::Policy::Wait, 0, seq);
        (void)log.commit();
    }
    for ([[maybe_unused]] auto _ : state)
    {
        ga::AlertLog log(ga::AlertLogLimits{});
        std::string err;
        if (!log.open(d.string(), 0, err) || log.depth() != 100000)
            state.SkipWithError("replay failed");
        benchmark::DoNotOptimize(log.depth());
    }
    state.counters["alerts/s"] = benchmark::Counter(
        100000.0 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    fs::remove_all(d);
}
BENCHMARK(BM_Replay100k)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
