// SPDX-License-Identifier: MIT
// The sensor scanner against cJSON parse + lookup + compare + delete, on the same corpus of
// SimulatedTemperatureSensor bodies, in one process; prints the speed ratio at the end.
// A counting hook on malloc/calloc/realloc (and operator new, which goes through malloc) reports
// heap allocations per message as the "allocs_per_msg" counter: the scanner must show 0.
#include "json_scan.h"

#include <benchmark/benchmark.h>
#include <cjson/cJSON.h>

#include <array>
#include <atomic>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

// --- allocation counting (this bench only) ---------------------------------------------------

#if defined(__SANITIZE_ADDRESS__)
#define GA_BENCH_COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define GA_BENCH_COUNT_ALLOCS 0
#endif
#endif
#ifndef GA_BENCH_COUNT_ALLOCS
#define GA_BENCH_COUNT_ALLOCS 1
#endif

namespace
{
std::atomic<std::uint64_t> g_allocs{0};
}

#if GA_BENCH_COUNT_ALLOCS
// glibc's real allocator entry points. Defining malloc in the executable interposes it for every
// shared library too (cJSON, libstdc++), so all heap use in the process is counted; free stays
// glibc's, which matches because the memory comes from glibc. Sanitizer builds skip the hook:
// their allocator would not accept glibc's blocks.
// NOLINTBEGIN(bugprone-reserved-identifier): glibc's own names
extern "C" void* __libc_malloc(std::size_t size);
extern "C" void* __libc_calloc(std::size_t nmemb, std::size_t size);
extern "C" void* __libc_realloc(void* ptr, std::size_t size);
// NOLINTEND(bugprone-reserved-identifier)

extern "C" void* malloc(std::size_t size) noexcept
{
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(size);
}
extern "C" void* calloc(std::size_t nmemb, std::size_t size) noexcept
{
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(nmemb, size);
}
extern "C" void* realloc(void* ptr, std::size_t size) noexcept
{
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(ptr, size);
}
#endif

// operator new/delete routed through the counted malloc, so C++ allocations in this binary count
// even if libstdc++ were built to bypass malloc. GCC flags free() in a replaced operator delete
// as a new/free mismatch once inlined; here that pairing is the point.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size)
{
    void* p = std::malloc(size == 0 ? 1 : size);
    if (p == nullptr)
    {
        throw std::bad_alloc();
    }
    return p;
}
void* operator new[](std::size_t size)
{
    return ::operator new(size);
}
void operator delete(void* p) noexcept
{
    std::free(p);
}
void operator delete[](void* p) noexcept
{
    std::free(p);
}
void operator delete(void* p, std::size_t /*size*/) noexcept
{
    std::free(p);
}
void operator delete[](void* p, std::size_t /*size*/) noexcept
{
    std::free(p);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace
{

constexpr double kThreshold = 25.0;
constexpr std::size_t kCorpusSize = 1000;

void append_double(std::string& out, double v)
{
    std::array<char, 32> buf{};
    const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v); // shortest round-trip
    out.append(buf.data(), res.ptr);
}

// Bodies shaped like SimulatedTemperatureSensor's, with full-precision doubles as it sends them.
const std::vector<std::string>& corpus()
{
    static const std::vector<std::string> messages = []
    {
        std::vector<std::string> out;
        // A fixed seed on purpose: every run measures the same corpus.
        std::mt19937_64 rng(20261122); // NOLINT(cert-msc51-cpp)
        std::uniform_real_distribution<double> machine_temp(20.0, 100.0);
        std::uniform_real_distribution<double> pressure(1.0, 10.0);
        std::uniform_real_distribution<double> ambient_temp(20.5, 21.5);
        std::uniform_int_distribution<int> humidity(24, 27);
        std::uniform_int_distribution<int> ticks(0, 9999999);
        for (std::size_t i = 0; i < kCorpusSize; ++i)
        {
            std::string m = R"({"machine":{"temperature":)";
            append_double(m, machine_temp(rng));
            m += R"(,"pressure":)";
            append_double(m, pressure(rng));
            m += R"(},"ambient":{"temperature":)";
            append_double(m, ambient_temp(rng));
            m += R"(,"humidity":)";
            m += std::to_string(humidity(rng));
            std::array<char, 64> ts{};
            (void)std::snprintf(ts.data(), ts.size(), "2026-11-22T14:%02zu:%02zu.%07dZ",
                                (i / 60) % 60, i % 60, ticks(rng));
            m += R"(},"timeCreated":")";
            m += ts.data();
            m += R"("})";
            out.push_back(std::move(m));
        }
        return out;
    }();
    return messages;
}

std::size_t corpus_bytes()
{
    std::size_t n = 0;
    for (const auto& m : corpus())
    {
        n += m.size();
    }
    return n;
}

void finish(benchmark::State& state, std::uint64_t allocs_before, std::size_t above)
{
    const std::uint64_t allocs = g_allocs.load(std::memory_order_relaxed) - allocs_before;
    const auto iters = static_cast<double>(state.iterations());
    state.counters["allocs_per_msg"] =
        GA_BENCH_COUNT_ALLOCS ? static_cast<double>(allocs) / iters : -1.0;
    state.counters["above_ratio"] = static_cast<double>(above) / iters;
    state.SetItemsProcessed(state.iterations());
    const double avg_bytes = static_cast<double>(corpus_bytes()) / kCorpusSize;
    state.SetBytesProcessed(static_cast<std::int64_t>(avg_bytes * iters));
}

void BM_Scanner(benchmark::State& state)
{
    const auto& msgs = corpus();
    ga::FieldPath path;
    if (!ga::parse_field_path("machine.temperature", path))
    {
        state.SkipWithError("bad path");
        return;
    }
    std::size_t i = 0;
    std::size_t above = 0;
    const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
    for ([[maybe_unused]] auto _ : state)
    {
        const ga::ScanResult r = ga::scan_sensor_message(msgs[i], path, kThreshold);
        above += r.verdict == ga::Verdict::Above ? 1U : 0U;
        benchmark::DoNotOptimize(r);
        i = i + 1 == msgs.size() ? 0 : i + 1;
    }
    finish(state, before, above);
}

void BM_CJson(benchmark::State& state)
{
    const auto& msgs = corpus();
    std::size_t i = 0;
    std::size_t above = 0;
    const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
    for ([[maybe_unused]] auto _ : state)
    {
        const std::string& m = msgs[i];
        cJSON* root = cJSON_ParseWithLength(m.data(), m.size());
        const cJSON* machine = cJSON_GetObjectItemCaseSensitive(root, "machine");
        const cJSON* temp = cJSON_GetObjectItemCaseSensitive(machine, "temperature");
        const bool is_above = cJSON_IsNumber(temp) != 0 && temp->valuedouble > kThreshold;
        above += is_above ? 1U : 0U;
        benchmark::DoNotOptimize(is_above);
        cJSON_Delete(root);
        i = i + 1 == msgs.size() ? 0 : i + 1;
    }
    finish(state, before, above);
}

BENCHMARK(BM_Scanner)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_CJson)->Unit(benchmark::kNanosecond);

// Shows results as usual and keeps the time per message of each bench for the ratio.
class RatioReporter : public benchmark::ConsoleReporter
{
  public:
    // Colour only on a terminal, so piped output (the run script, CI logs) stays plain.
    RatioReporter() : ConsoleReporter(isatty(STDOUT_FILENO) != 0 ? OO_Defaults : OO_Tabular) {}
    void ReportRuns(const std::vector<Run>& runs) override
    {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& r : runs)
        {
            // With --benchmark_repetitions the median (reported after the repetitions) wins.
            const bool usable = r.run_type == Run::RT_Iteration || r.aggregate_name == "median";
            if (usable && !r.error_occurred)
            {
                const auto allocs = r.counters.find("allocs_per_msg");
                results_[r.run_name.function_name] = {
                    r.GetAdjustedRealTime(), r.GetAdjustedCPUTime(),
                    allocs == r.counters.end() ? -1.0 : static_cast<double>(allocs->second)};
            }
        }
    }
    struct Result
    {
        double ns_per_msg;     // wall clock
        double cpu_ns_per_msg; // steadier when other work shares the cores
        double allocs_per_msg;
    };
    [[nodiscard]] const std::map<std::string, Result>& results() const { return results_; }

  private:
    std::map<std::string, Result> results_;
};

} // namespace

int main(int argc, char** argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
    {
        return 1;
    }
    (void)corpus(); // build the corpus before any timing
    std::printf("corpus: %zu SimulatedTemperatureSensor bodies, %zu bytes on average\n",
                kCorpusSize, corpus_bytes() / kCorpusSize);
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    const auto& res = reporter.results();
    const auto scan = res.find("BM_Scanner");
    const auto cjson = res.find("BM_CJson");
    if (scan != res.end() && cjson != res.end() && scan->second.ns_per_msg > 0.0)
    {
        const auto& sc = scan->second;
        const auto& cj = cjson->second;
        std::printf("scanner %.1f ns/msg (cpu %.1f), %.0f allocs/msg\n", sc.ns_per_msg,
                    sc.cpu_ns_per_msg, sc.allocs_per_msg);
        std::printf("cJSON   %.1f ns/msg (cpu %.1f), %.0f allocs/msg\n", cj.ns_per_msg,
                    cj.cpu_ns_per_msg, cj.allocs_per_msg);
        std::printf("ratio cJSON/scanner: %.2fx wall, %.2fx cpu\n", cj.ns_per_msg / sc.ns_per_msg,
                    cj.cpu_ns_per_msg / sc.cpu_ns_per_msg);
    }
    benchmark::Shutdown();
    return 0;
}
