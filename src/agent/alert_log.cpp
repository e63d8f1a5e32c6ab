// SPDX-License-Identifier: MIT
// The alert log: segment files of CRC'd records, read back with pread when sent. Layout, native
// byte order (little-endian on every target we build):
//   segment header (32 bytes): magic u64, version u32, header bytes u32, first seq u64,
//                              reserved u32, crc u32 (over the 28 bytes before it)
//   record header (32 bytes):  magic u32, len u32, seq u64, wall s i64, flags u32,
//                              crc u32 (over len, seq, wall, flags and the payload)
// Acknowledged and dropped records are "done": the watermark is the highest seq such that every
// seq at or below it is done, and it is what is persisted in `alerts-acked`.
#include "alert_log.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

namespace ga
{
namespace
{
constexpr std::uint64_t kSegMagic = 0x3147455341414147ULL; // "GAASEG1" + '1', little-endian
constexpr std::uint32_t kVersion = 1;
constexpr std::uint32_t kRecMagic = 0x52414147U; // "GAAR"
constexpr std::size_t kSegHeader = 32;
constexpr std::size_t kRecHeader = 32;
constexpr std::size_t kMemHeader = 24;
constexpr std::size_t kFormatMaxRecord = std::size_t{16} << 20;
constexpr std::size_t kScratch = std::size_t{64} * 1024U;
// Recent segment bytes kept in memory (see Impl::recent).
constexpr std::size_t kRecentBytes = std::size_t{16} * 1024U;
constexpr std::size_t kScanChunk = 4096;
constexpr std::uint64_t kMem = ~std::uint64_t{0}; // "segment" of records held in memory
constexpr std::int64_t kProbeMs = 5000;
constexpr std::int64_t kAckPersistMs = 1000;
constexpr const char* kPrefix = "alerts-";
constexpr const char* kSuffix = ".log";

struct SegHeader
{
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t header_bytes;
    std::uint64_t first_seq;
    std::uint32_t reserved;
    std::uint32_t crc;
};
static_assert(sizeof(SegHeader) == kSegHeader);

struct RecHeader
{
    std::uint32_t magic;
    std::uint32_t len;
    std::uint64_t seq;
    std::int64_t wall_s;
    std::uint32_t flags;
    std::uint32_t crc;
};
static_assert(sizeof(RecHeader) == kRecHeader);

struct MemHeader
{
    std::uint64_t seq;
    std::int64_t wall_s;
    std::uint32_t len;
    std::uint32_t reserved;
};
static_assert(sizeof(MemHeader) == kMemHeader);

// CRC-32 (IEEE, reflected) four bytes per step ("slicing by 4"): table k maps a byte to its CRC
// contribution k bytes further on, so four lookups replace four dependent byte steps.
constexpr std::array<std::array<std::uint32_t, 256>, 4> make_crc_tables()
{
    std::array<std::array<std::uint32_t, 256>, 4> t{};
    for (std::uint32_t i = 0; i < 256; ++i)
    {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k)
            c = (c >> 1U) ^ (0xEDB88320U & (0U - (c & 1U)));
        t[0][i] = c;
    }
    for (std::size_t k = 1; k < 4; ++k)
        for (std::size_t i = 0; i < 256; ++i)
            t[k][i] = (t[k - 1][i] >> 8U) ^ t[0][t[k - 1][i] & 0xFFU];
    return t;
}
constexpr std::array<std::array<std::uint32_t, 256>, 4> kCrc = make_crc_tables();

// Running CRC-32 (IEEE): start with 0xFFFFFFFF, finish with ~.
std::uint32_t crc_update(std::uint32_t c, const void* data, std::size_t n)
{
    const auto* p = static_cast<const unsigned char*>(data);
    for (; n >= 4; n -= 4, p += 4)
    {
        c ^= std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8U) | (std::uint32_t{p[2]} << 16U) |
             (std::uint32_t{p[3]} << 24U);
        c = kCrc[3][c & 0xFFU] ^ kCrc[2][(c >> 8U) & 0xFFU] ^ kCrc[1][(c >> 16U) & 0xFFU] ^
            kCrc[0][c >> 24U];
    }
    for (; n > 0; --n, ++p)
        c = kCrc[0][(c ^ *p) & 0xFFU] ^ (c >> 8U);
    return c;
}

std::uint32_t seg_header_crc(const SegHeader& h)
{
    return ~crc_update(0xFFFFFFFFU, &h, offsetof(SegHeader, crc));
}

// The part of a record header the CRC covers: everything between the magic and the crc.
std::uint32_t rec_header_crc_start(const RecHeader& h)
{
    const auto* p = reinterpret_cast<const unsigned char*>(&h);
    return crc_update(0xFFFFFFFFU, p + offsetof(RecHeader, len),
                      offsetof(RecHeader, crc) - offsetof(RecHeader, len));
}

std::string seg_name(std::uint64_t first_seq)
{
    static constexpr char kHex[] = "0123456789abcdef";
    std::string name(kPrefix);
    for (int shift = 60; shift >= 0; shift -= 4)
        name.push_back(kHex[(first_seq >> static_cast<unsigned>(shift)) & 0xFU]);
    name += kSuffix;
    return name;
}

// "alerts-<16 hex>.log" -> first seq; false for any other name.
bool parse_seg_name(const std::string& name, std::uint64_t& first_seq)
{
    const std::size_t pre = std::strlen(kPrefix);
    if (name.size() != pre + 16 + std::strlen(kSuffix))
        return false;
    const char* b = name.data() + pre;
    const auto [end, ec] = std::from_chars(b, b + 16, first_seq, 16);
    return ec == std::errc{} && end == b + 16;
}

AlertLogLimits sane(AlertLogLimits l)
{
    l.max_record = std::clamp<std::size_t>(l.max_record, 1, kFormatMaxRecord);
    // Room for at least two of the largest records, so one drop always makes room for the next.
    const std::uint64_t min_bytes = 2 * (kSegHeader + kRecHeader + std::uint64_t{l.max_record});
    l.max_bytes = std::max(l.max_bytes, min_bytes);
    // At least eight segments under the bound: DropOldest then drops an eighth, not everything.
    l.segment_bytes = std::clamp<std::uint64_t>(l.segment_bytes, 4096,
                                                std::max<std::uint64_t>(l.max_bytes / 8, 4096));
    l.memory_bytes = std::max(l.memory_bytes, kMemHeader + l.max_record);
    l.max_inflight = std::max<std::size_t>(l.max_inflight, 1);
    return l;
}
} // namespace

struct AlertLog::Impl
{
    struct Segment
    {
        std::uint64_t first_seq = 0;
        std::uint64_t last_seq = 0; // 0: no record yet
        std::uint64_t bytes = 0;    // file size
        std::uint64_t count = 0;    // valid records
        std::uint64_t live = 0;     // records above the watermark
        std::int64_t newest_wall = 0;
        bool sealed = false; // never appended to again (a tail that could not be cut)
    };
    enum class State : std::uint8_t
    {
        Pending,
        Acked,
        Gone, // dropped from memory while in flight
    };
    struct InFlight
    {
        std::uint64_t seq;
        std::uint64_t seg; // first seq of its segment, or kMem
        std::uint64_t off; // offset of the record in the segment
        std::uint32_t frame;
        State state;
    };
    struct Pos
    {
        std::uint64_t seg = 0;
        std::uint64_t off = 0;
    };

    explicit Impl(const AlertLogLimits& l)
        : lim(sane(l)), ring(lim.memory_bytes), win(lim.max_inflight),
          scratch_bytes(std::max(kScratch, lim.max_record)),
          scratch(std::make_unique_for_overwrite<char[]>(scratch_bytes))
    {
    }

    AlertLogLimits lim;
    std::string dir;
    bool loaded = false;  // segments listed and read
    bool failing = false; // the dir takes no writes: DropOldest to memory, Wait gets Full
    bool fail_logged = false;
    std::int64_t next_probe_ms = -1; // -1: set by the next maintain()

    std::vector<Segment> segs; // oldest first
    std::uint64_t total = 0;   // bytes of segs
    port::SegmentFile tail;    // the writable file of segs.back()
    std::uint64_t tail_key = 0;
    bool tail_dirty = false;
    bool dir_dirty = false;
    port::SegmentFile reader;
    std::uint64_t reader_key = 0;

    std::uint64_t next_seq = 1;
    std::uint64_t watermark = 0;
    std::uint64_t persisted = 0;
    std::int64_t next_ack_ms = 0;
    bool ack_write_failing = false;

    ByteRing ring; // not-durable records (or all of them with no dir)
    std::size_t ring_count = 0;
    std::size_t mem_cursor = 0; // bytes after the ring head of the next record to hand out

    std::vector<InFlight> win; // circular, sorted by seq
    std::size_t win_head = 0;
    std::size_t win_count = 0;
    std::uint64_t acked_pending = 0; // Acked entries still in the window

    Pos cursor;     // next record to hand out from disk
    Pos front_hint; // at or before the first record above the watermark

    std::uint64_t dropped = 0;
    std::uint64_t corrupt = 0;
    std::uint64_t not_persisted = 0;
    std::uint64_t commits = 0;
    std::uint64_t uncommitted = 0;

    std::size_t scratch_bytes; // CRC checks of big records, and memory records being written
    std::unique_ptr<char[]> scratch;

    // A window of one segment's bytes in memory: appends are copied here as they are written,
    // and a read for sending that misses fills it with one pread of up to kRecentBytes. Handing
    // alerts out then costs no read while sending keeps up, and one read per kRecentBytes of
    // backlog otherwise, instead of two per record. Segment bytes never change once written
    // (a torn tail is cut only while loading, before anything is cached).
    struct Recent
    {
        bool valid = false;
        std::uint64_t seg = 0; // first seq of the segment
        std::uint64_t off = 0;
        std::size_t len = 0;
        bool written = false; // every byte was copied here by append(): its CRCs need no check
    };
    Recent recent;
    std::unique_ptr<char[]> recent_buf; // allocated on first use

    char* recent_data()
    {
        if (!recent_buf)
            recent_buf = std::make_unique_for_overwrite<char[]>(kRecentBytes);
        return recent_buf.get();
    }

    void remember_append(std::uint64_t seg,
                         std::uint64_t off,
                         std::string_view head,
                         std::string_view body)
    {
        const std::size_t n = head.size() + body.size();
        if (n > kRecentBytes)
        {
            recent.valid = false;
            return;
        }
        if (!recent.valid || recent.seg != seg || recent.off + recent.len != off ||
            recent.len + n > kRecentBytes)
            recent = {true, seg, off, 0, true};
        char* const d = recent_data() + recent.len;
        std::memcpy(d, head.data(), head.size());
        if (!body.empty())
            std::memcpy(d + head.size(), body.data(), body.size());
        recent.len += n;
    }

    // Reads `n` bytes at `off` of segment `seg` (valid up to `end`) through `recent`.
    bool read_recent(const port::SegmentFile& f,
                     std::uint64_t seg,
                     std::uint64_t off,
                     std::uint64_t end,
                     void* dst,
                     std::size_t n)
    {
        int e = 0;
        if (recent.valid && recent.seg == seg && off >= recent.off &&
            off - recent.off + n <= recent.len)
        {
            std::memcpy(dst, recent_data() + (off - recent.off), n);
            return true;
        }
        if (n > kRecentBytes || end < off || end - off < n)
            return f.read_at(off, dst, n, e);
        const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(kRecentBytes, end - off));
        recent.valid = false;
        if (!f.read_at(off, recent_data(), len, e))
            return f.read_at(off, dst, n, e);
        recent = {true, seg, off, len, false};
        std::memcpy(dst, recent_data(), n);
        return true;
    }

    // read_frame() for handing a record out: through `recent`, the payload into `out`.
    bool read_frame_recent(const port::SegmentFile& f,
                           std::uint64_t off,
                           std::uint64_t end,
                           std::uint64_t first_seq,
                           RecHeader& h,
                           std::span<char> out)
    {
        if (end < off || end - off < kRecHeader ||
            !read_recent(f, first_seq, off, end, &h, sizeof h))
            return false;
        if (h.magic != kRecMagic || h.flags != 0 || h.len > kFormatMaxRecord ||
            end - off - kRecHeader < h.len || h.seq < first_seq)
            return false;
        if (h.len > out.size() || h.len > kRecentBytes)
            return read_frame(f, off, end, first_seq, h, out);
        const bool written = recent.valid && recent.written && recent.seg == first_seq &&
                             off >= recent.off &&
                             off - recent.off + kRecHeader + h.len <= recent.len;
        if (!read_recent(f, first_seq, off + kRecHeader, end, out.data(), h.len))
            return false;
        // Bytes this process framed itself were checksummed from the same memory.
        return written || ~crc_update(rec_header_crc_start(h), out.data(), h.len) == h.crc;
    }
    std::array<char, kScanChunk> scan_buf{};

    [[nodiscard]] std::string path_of(std::uint64_t first_seq) const
    {
        return dir + "/" + seg_name(first_seq);
    }

    // ---- in-flight window ----
    InFlight& win_at(std::size_t i) { return win[(win_head + i) % win.size()]; }
    void win_push(const InFlight& e)
    {
        win[(win_head + win_count) % win.size()] = e;
        ++win_count;
    }
    void win_pop()
    {
        win_head = (win_head + 1) % win.size();
        --win_count;
    }
    // Index of the entry for `seq`, or win_count.
    std::size_t win_find(std::uint64_t seq)
    {
        std::size_t lo = 0;
        std::size_t hi = win_count;
        while (lo < hi)
        {
            const std::size_t mid = lo + (hi - lo) / 2;
            if (win_at(mid).seq < seq)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo < win_count && win_at(lo).seq == seq ? lo : win_count;
    }

    Segment* find_seg(std::uint64_t first_seq)
    {
        const auto it =
            std::lower_bound(segs.begin(), segs.end(), first_seq,
                             [](const Segment& s, std::uint64_t v) { return s.first_seq < v; });
        return it != segs.end() && it->first_seq == first_seq ? &*it : nullptr;
    }

    void pop_ring_done()
    {
        while (ring_count > 0)
        {
            MemHeader h{};
            ring.read(0, &h, sizeof h);
            if (h.seq > watermark)
                return;
            const std::size_t n = kMemHeader + h.len;
            ring.pop(n);
            --ring_count;
            mem_cursor = mem_cursor > n ? mem_cursor - n : 0;
        }
    }

    // Moves the watermark over the done entries at the front of the window.
    void pop_window_done()
    {
        while (win_count > 0 && win_at(0).state != State::Pending)
        {
            const InFlight e = win_at(0);
            win_pop();
            if (e.state == State::Acked)
            {
                --acked_pending;
                if (e.seg != kMem)
                {
                    if (Segment* s = find_seg(e.seg); s != nullptr && s->live > 0)
                        --s->live;
                    front_hint = {e.seg, e.off + e.frame};
                }
            }
            watermark = std::max(watermark, e.seq);
        }
        pop_ring_done();
    }

    // ---- reading frames ----
    port::SegmentFile* file_for(const Segment& s)
    {
        if (tail.is_open() && tail_key == s.first_seq)
            return &tail;
        if (!reader.is_open() || reader_key != s.first_seq)
        {
            int e = 0;
            if (!reader.open(path_of(s.first_seq), false, false, e))
            {
                port::log(port::Level::Err, "alert log: cannot read %s: %s",
                          path_of(s.first_seq).c_str(), port::error_text(e));
                reader.close();
                return nullptr;
            }
            reader_key = s.first_seq;
        }
        return &reader;
    }

    // Validates the frame at `off` (ending by `end`); the payload lands in `out` when it fits,
    // else it is only checked (through the scratch buffer).
    bool read_frame(const port::SegmentFile& f,
                    std::uint64_t off,
                    std::uint64_t end,
                    std::uint64_t first_seq,
                    RecHeader& h,
                    std::span<char> out) const
    {
        int e = 0;
        if (end < off || end - off < kRecHeader || !f.read_at(off, &h, sizeof h, e))
            return false;
        if (h.magic != kRecMagic || h.flags != 0 || h.len > kFormatMaxRecord ||
            end - off - kRecHeader < h.len || h.seq < first_seq)
            return false;
        std::uint32_t c = rec_header_crc_start(h);
        if (h.len <= out.size())
        {
            if (!f.read_at(off + kRecHeader, out.data(), h.len, e))
                return false;
            c = crc_update(c, out.data(), h.len);
        }
        else
        {
            std::uint64_t at = off + kRecHeader;
            std::size_t left = h.len;
            while (left > 0)
            {
                const std::size_t n = std::min(left, scratch_bytes);
                if (!f.read_at(at, scratch.get(), n, e))
                    return false;
                c = crc_update(c, scratch.get(), n);
                at += n;
                left -= n;
            }
        }
        return ~c == h.crc;
    }

    // The first valid frame at or after `from`, looked for byte by byte up to `end`.
    bool find_frame(const port::SegmentFile& f,
                    std::uint64_t from,
                    std::uint64_t end,
                    std::uint64_t first_seq,
                    std::uint64_t& found)
    {
        std::uint64_t base = from;
        while (base < end && end - base >= kRecHeader)
        {
            const auto n =
                static_cast<std::size_t>(std::min<std::uint64_t>(scan_buf.size(), end - base));
            int e = 0;
            if (!f.read_at(base, scan_buf.data(), n, e))
                return false;
            for (std::size_t i = 0; i + sizeof(std::uint32_t) <= n; ++i)
            {
                std::uint32_t m = 0;
                std::memcpy(&m, scan_buf.data() + i, sizeof m);
                RecHeader h{};
                if (m == kRecMagic && read_frame(f, base + i, end, first_seq, h, {}))
                {
                    found = base + i;
                    return true;
                }
            }
            if (n <= sizeof(std::uint32_t))
                return false;
            base += n - (sizeof(std::uint32_t) - 1); // a magic may straddle two chunks
        }
        return false;
    }

    // ---- failures ----
    void fail(const std::string& path, int e)
    {
        failing = true;
        next_probe_ms = -1;
        if (fail_logged)
            return;
        fail_logged = true;
        port::log(port::Level::Err,
                  "alert log: cannot write the alert journal %s: %s; alerts from sources that "
                  "cannot wait are kept in memory (not persisted) and sent, the others wait until "
                  "it takes writes again",
                  path.c_str(), port::error_text(e));
    }

    // ---- segments ----
    [[nodiscard]] bool tail_appendable() const
    {
        return !segs.empty() && !segs.back().sealed && segs.back().bytes < lim.segment_bytes;
    }

    void unlink_segment(std::uint64_t first_seq)
    {
        if (reader_key == first_seq)
            reader.close();
        if (tail_key == first_seq && tail.is_open())
        {
            tail.close();
            tail_dirty = false;
        }
        if (recent.seg == first_seq)
            recent.valid = false;
        int e = 0;
        if (!port::unlink_file(path_of(first_seq), e))
            port::log(port::Level::Warning, "alert log: cannot remove %s: %s",
                      path_of(first_seq).c_str(), port::error_text(e));
        dir_dirty = true;
    }

    // Deletes the oldest segment with whatever it holds; returns the records dropped (those
    // above the watermark that were not acknowledged).
    std::uint64_t drop_front_segment()
    {
        const Segment s = segs.front();
        std::uint64_t acked = 0;
        while (win_count > 0 && win_at(0).seq <= s.last_seq)
        {
            if (win_at(0).state == State::Acked)
            {
                --acked_pending;
                ++acked;
            }
            win_pop();
        }
        const std::uint64_t n = s.live > acked ? s.live - acked : 0;
        dropped += n;
        watermark = std::max(watermark, s.last_seq); // everything older is gone with it
        unlink_segment(s.first_seq);
        total -= s.bytes;
        segs.erase(segs.begin());
        pop_window_done();
        return n;
    }

    // Deletes the segments at the front whose records are all done, but not an appendable tail.
    void delete_done_segments()
    {
        bool any = false;
        while (!segs.empty())
        {
            const Segment& s = segs.front();
            if (s.count > 0 && s.last_seq > watermark)
                break;
            if (segs.size() == 1 && tail_appendable())
                break;
            // The last segment holds the highest seq given out; once it is gone only the
            // watermark remembers it. Persisted first, so a restart never numbers a new alert
            // with a seq (and so a message id, "ga-<store id>-<seq>") an older one had.
            if (segs.size() == 1 && persisted < s.last_seq)
            {
                write_watermark();
                if (persisted < s.last_seq)
                    break;
            }
            unlink_segment(s.first_seq);
            total -= s.bytes;
            segs.erase(segs.begin());
            any = true;
        }
        int e = 0;
        if (any && port::sync_dir(dir, e))
            dir_dirty = false;
    }

    bool create_segment(std::uint64_t first_seq, int& e)
    {
        tail.close();
        tail_dirty = false;
        const std::string path = path_of(first_seq);
        if (!tail.open(path, true, true, e))
            return false;
        if (tail.size() != 0)
        {
            // Never write into a file this log did not just create.
            tail.close();
            e = EEXIST;
            return false;
        }
        SegHeader h{kSegMagic, kVersion, static_cast<std::uint32_t>(kSegHeader), first_seq, 0, 0};
        h.crc = seg_header_crc(h);
        if (!tail.append({reinterpret_cast<const char*>(&h), sizeof h}, {}, e))
        {
            tail.close();
            int ignored = 0;
            (void)port::unlink_file(path, ignored);
            return false;
        }
        Segment s;
        s.first_seq = first_seq;
        s.bytes = kSegHeader;
        segs.push_back(s);
        total += kSegHeader;
        tail_key = first_seq;
        tail_dirty = true;
        dir_dirty = true;
        return true;
    }

    // A writable tail with room, continuing the last segment or starting a new one.
    bool ensure_tail(int& e, std::string& path)
    {
        if (tail_appendable())
        {
            Segment& b = segs.back();
            if (tail.is_open() && tail_key == b.first_seq)
                return true;
            if (tail.open(path_of(b.first_seq), true, false, e) && tail.size() == b.bytes)
            {
                tail_key = b.first_seq;
                tail_dirty = false;
                return true;
            }
            tail.close();
            b.sealed = true;
        }
        if (tail.is_open() && tail_dirty)
        {
            // Rolled over within a batch: this segment's one fdatasync happens now.
            ++commits;
            if (!tail.sync(e))
            {
                path = path_of(tail_key);
                return false;
            }
            tail_dirty = false;
        }
        path = path_of(next_seq);
        return create_segment(next_seq, e);
    }

    // False when the disk failed (then `failing` is set); else `r` says what happened.
    bool disk_append(std::string_view rec,
                     Policy policy,
                     std::int64_t wall_s,
                     std::uint64_t& seq,
                     AppendResult& r)
    {
        const std::uint64_t frame = kRecHeader + rec.size();
        while (total + frame + (tail_appendable() ? 0 : kSegHeader) > lim.max_bytes)
        {
            if (policy == Policy::Wait || segs.empty())
            {
                r = AppendResult::Full;
                return true;
            }
            (void)drop_front_segment();
        }
        int e = 0;
        std::string path;
        if (!ensure_tail(e, path))
        {
            fail(path, e);
            return false;
        }
        RecHeader h{kRecMagic, static_cast<std::uint32_t>(rec.size()), next_seq, wall_s, 0, 0};
        h.crc = ~crc_update(rec_header_crc_start(h), rec.data(), rec.size());
        if (!tail.append({reinterpret_cast<const char*>(&h), sizeof h}, rec, e))
        {
            fail(path_of(tail_key), e);
            return false;
        }
        Segment& s = segs.back();
        remember_append(s.first_seq, s.bytes, {reinterpret_cast<const char*>(&h), sizeof h}, rec);
        s.newest_wall = s.count == 0 ? wall_s : std::max(s.newest_wall, wall_s);
        s.last_seq = next_seq;
        s.bytes += frame;
        ++s.count;
        ++s.live;
        total += frame;
        tail_dirty = true;
        ++uncommitted;
        seq = next_seq++;
        r = AppendResult::Appended;
        return true;
    }

    // ---- memory ring ----
    void drop_ring_front()
    {
        MemHeader h{};
        ring.read(0, &h, sizeof h);
        const std::size_t i = win_find(h.seq);
        if (i < win_count && win_at(i).state == State::Acked)
            --acked_pending;
        else
            ++dropped;
        if (i < win_count)
            win_at(i).state = State::Gone;
        const std::size_t n = kMemHeader + h.len;
        ring.pop(n);
        --ring_count;
        mem_cursor = mem_cursor > n ? mem_cursor - n : 0;
        pop_window_done();
    }

    AppendResult
    mem_append(std::string_view rec, Policy policy, std::int64_t wall_s, std::uint64_t& seq)
    {
        const std::size_t need = kMemHeader + rec.size(); // <= capacity: see sane()
        while (ring.free_space() < need)
        {
            if (policy == Policy::Wait)
                return AppendResult::Full;
            drop_ring_front();
        }
        const MemHeader h{next_seq, wall_s, static_cast<std::uint32_t>(rec.size()), 0};
        ring.push(&h, sizeof h);
        ring.push(rec.data(), rec.size());
        ++ring_count;
        seq = next_seq++;
        return AppendResult::Appended;
    }

    // Writes the records held in memory into a new segment, synced; they become durable.
    bool flush_ring(int& e, std::string& path)
    {
        MemHeader first{};
        ring.read(0, &first, sizeof first);
        const std::uint64_t need =
            kSegHeader + ring.size() + ring_count * (kRecHeader - kMemHeader);
        while (total + need > lim.max_bytes && !segs.empty())
            (void)drop_front_segment();
        if (!segs.empty())
            segs.back().sealed = true;
        path = path_of(first.seq);
        if (!create_segment(first.seq, e))
            return false;
        Segment& s = segs.back();
        bool ok = true;
        for (std::size_t at = 0; ok && at < ring.size();)
        {
            MemHeader m{};
            ring.read(at, &m, sizeof m);
            ring.read(at + kMemHeader, scratch.get(), m.len);
            RecHeader h{kRecMagic, m.len, m.seq, m.wall_s, 0, 0};
            h.crc = ~crc_update(rec_header_crc_start(h), scratch.get(), m.len);
            ok = tail.append({reinterpret_cast<const char*>(&h), sizeof h}, {scratch.get(), m.len},
                             e);
            s.newest_wall = s.count == 0 ? m.wall_s : std::max(s.newest_wall, m.wall_s);
            s.last_seq = m.seq;
            s.bytes += kRecHeader + m.len;
            ++s.count;
            ++s.live;
            total += kRecHeader + m.len;
            at += kMemHeader + m.len;
        }
        ok = ok && tail.sync(e) && port::sync_dir(dir, e);
        if (!ok)
        {
            // The records stay in memory; the partial segment goes.
            total -= s.bytes;
            const std::uint64_t key = s.first_seq;
            segs.pop_back();
            unlink_segment(key);
            return false;
        }
        tail_dirty = false;
        dir_dirty = false;
        // What was handed out from memory is now at these offsets in the segment.
        std::uint64_t off = kSegHeader;
        std::size_t j = 0;
        bool cursor_set = mem_cursor == 0;
        for (std::size_t at = 0; at < ring.size();)
        {
            MemHeader m{};
            ring.read(at, &m, sizeof m);
            const auto frame = static_cast<std::uint32_t>(kRecHeader + m.len);
            if (!cursor_set && at >= mem_cursor)
            {
                cursor = {s.first_seq, off};
                cursor_set = true;
            }
            while (j < win_count && win_at(j).seq < m.seq)
                ++j;
            if (j < win_count && win_at(j).seq == m.seq && win_at(j).seg == kMem)
            {
                win_at(j).seg = s.first_seq;
                win_at(j).off = off;
                win_at(j).frame = frame;
            }
            off += frame;
            at += kMemHeader + m.len;
        }
        if (!cursor_set)
            cursor = {s.first_seq, off};
        ring.clear();
        ring_count = 0;
        mem_cursor = 0;
        return true;
    }

    // ---- acknowledgement watermark ----
    void write_watermark()
    {
        std::array<char, 24> text{};
        const auto [end, ec] = std::to_chars(text.data(), text.data() + text.size(), watermark);
        std::string err;
        if (!port::write_file_atomic(
                dir + "/alerts-acked",
                std::string_view(text.data(), static_cast<std::size_t>(end - text.data())), err))
        {
            // Harmless for delivery (a restart would re-send acknowledged alerts): said once.
            if (!ack_write_failing)
                port::log(port::Level::Warning,
                          "alert log: %s (acknowledged alerts may be sent again after a restart)",
                          err.c_str());
            ack_write_failing = true;
            return;
        }
        ack_write_failing = false;
        persisted = watermark;
    }

    // ---- age ----
    // `seq` is the first record above the watermark: it is done now, dropped unless acked.
    void expire_one(std::uint64_t seq)
    {
        bool counted = true;
        if (win_count > 0 && win_at(0).seq == seq)
        {
            if (win_at(0).state == State::Acked)
            {
                --acked_pending;
                counted = false;
            }
            else if (win_at(0).state == State::Gone)
            {
                counted = false;
            }
            win_pop();
        }
        if (counted)
            ++dropped;
        watermark = std::max(watermark, seq);
    }

    void expire(std::int64_t cutoff)
    {
        while (!segs.empty() && segs.front().count > 0 && segs.front().newest_wall < cutoff &&
               segs.front().last_seq > watermark)
            (void)drop_front_segment();
        for (Segment& s : segs)
        {
            if (s.count == 0 || s.last_seq <= watermark)
                continue;
            port::SegmentFile* f = file_for(s);
            if (f == nullptr)
                return;
            std::uint64_t off = kSegHeader;
            if (front_hint.seg == s.first_seq)
                off = std::max(off, front_hint.off);
            while (off < s.bytes)
            {
                RecHeader h{};
                if (!read_frame(*f, off, s.bytes, s.first_seq, h, {}))
                {
                    std::uint64_t q = 0;
                    if (!find_frame(*f, off + 1, s.bytes, s.first_seq, q))
                        break;
                    off = q;
                    continue;
                }
                const std::uint64_t next = off + kRecHeader + h.len;
                if (h.seq > watermark)
                {
                    if (h.wall_s >= cutoff)
                    {
                        pop_window_done();
                        return;
                    }
                    if (s.live > 0)
                        --s.live;
                    expire_one(h.seq);
                    front_hint = {s.first_seq, next};
                }
                off = next;
            }
        }
        // Memory holds only records newer than anything on disk.
        while (ring_count > 0)
        {
            MemHeader m{};
            ring.read(0, &m, sizeof m);
            if (m.wall_s >= cutoff)
                break;
            expire_one(m.seq);
            pop_ring_done();
        }
        pop_window_done();
    }

    // ---- open ----
    enum class Scan : std::uint8_t
    {
        Loaded,
        Refused,
        Empty,
    };

    Scan scan_segment(const std::string& name,
                      std::uint64_t name_seq,
                      Segment& out,
                      std::uint64_t& max_seen)
    {
        const std::string path = dir + "/" + name;
        port::SegmentFile f;
        int e = 0;
        if (!f.open(path, false, false, e))
        {
            port::log(port::Level::Err, "alert log: cannot read %s: %s; left as it is and ignored",
                      path.c_str(), port::error_text(e));
            max_seen = std::max(max_seen, name_seq);
            return Scan::Refused;
        }
        const std::uint64_t size = f.size();
        SegHeader h{};
        constexpr std::size_t kVersionEnd = offsetof(SegHeader, header_bytes);
        const std::size_t head = size < kSegHeader ? static_cast<std::size_t>(size) : kSegHeader;
        if (!f.read_at(0, &h, head, e))
            return Scan::Refused;
        // A newer format is recognised by its magic and version even in a short file.
        const bool newer = head >= kVersionEnd && h.magic == kSegMagic && h.version > kVersion;
        if (!newer && size < kSegHeader)
            return Scan::Empty; // created, then a crash before its header was written
        const char* problem = nullptr;
        if (h.magic != kSegMagic)
            problem = "has no segment header";
        else if (h.version != kVersion)
            problem = "is of a format version this agent does not know";
        else if (h.header_bytes != kSegHeader || h.crc != seg_header_crc(h))
            problem = "has a damaged segment header";
        if (problem != nullptr)
        {
            port::log(port::Level::Err,
                      "alert log: %s %s (format version %u; this agent writes version %u); left "
                      "untouched and ignored",
                      path.c_str(), problem, h.version, kVersion);
            // Each record takes more than one byte: its seqs are below first seq + size.
            max_seen = std::max(max_seen, name_seq + size);
            return Scan::Refused;
        }
        out = Segment{};
        out.first_seq = h.first_seq;
        max_seen = std::max(max_seen, h.first_seq > 0 ? h.first_seq - 1 : 0);
        std::uint64_t off = kSegHeader;
        while (off < size)
        {
            RecHeader r{};
            if (read_frame(f, off, size, h.first_seq, r, {}))
            {
                out.newest_wall = out.count == 0 ? r.wall_s : std::max(out.newest_wall, r.wall_s);
                out.last_seq = std::max(out.last_seq, r.seq);
                ++out.count;
                if (r.seq > watermark)
                    ++out.live;
                max_seen = std::max(max_seen, r.seq);
                off += kRecHeader + r.len;
                continue;
            }
            std::uint64_t q = 0;
            if (!find_frame(f, off + 1, size, h.first_seq, q))
                break;
            ++corrupt;
            port::log(port::Level::Warning,
                      "alert log: %s: %llu corrupt byte(s) at offset %llu skipped (bad CRC)",
                      path.c_str(), static_cast<unsigned long long>(q - off),
                      static_cast<unsigned long long>(off));
            off = q;
        }
        out.bytes = size;
        if (off < size)
        {
            // A torn tail: cut it so appends continue on a record boundary.
            port::SegmentFile w;
            if (w.open(path, true, false, e) && w.truncate(off, e))
            {
                port::log(port::Level::Notice, "alert log: cut a torn tail of %llu byte(s) from %s",
                          static_cast<unsigned long long>(size - off), path.c_str());
                out.bytes = off;
            }
            else
            {
                port::log(port::Level::Warning,
                          "alert log: cannot cut a torn tail from %s: %s; no more appends to it",
                          path.c_str(), port::error_text(e));
                out.sealed = true;
            }
        }
        return Scan::Loaded;
    }

    bool load(std::string& err)
    {
        int e = 0;
        if (!port::make_dir(dir, e))
        {
            err = "alert log: cannot create the state dir " + dir + ": " + port::error_text(e);
            return false;
        }
        std::vector<std::string> names;
        if (!port::list_dir(dir, kPrefix, kSuffix, names, e))
        {
            err = "alert log: cannot read the state dir " + dir + ": " + port::error_text(e);
            return false;
        }
        std::string text;
        std::string rerr;
        std::uint64_t acked = 0;
        const port::ReadStatus st = port::read_file(dir + "/alerts-acked", text, 64, rerr);
        if (st == port::ReadStatus::Error)
            port::log(port::Level::Warning, "alert log: %s (acknowledged alerts may be sent again)",
                      rerr.c_str());
        else if (st == port::ReadStatus::Ok)
            (void)std::from_chars(text.data(), text.data() + text.size(), acked);
        watermark = acked;
        persisted = acked;

        std::vector<std::pair<std::uint64_t, std::string>> found;
        found.reserve(names.size());
        for (std::string& n : names)
        {
            std::uint64_t first = 0;
            if (parse_seg_name(n, first))
                found.emplace_back(first, std::move(n));
        }
        std::sort(found.begin(), found.end());
        std::uint64_t max_seen = watermark;
        segs.clear();
        total = 0;
        for (const auto& [first, name] : found)
        {
            Segment s;
            const Scan r = scan_segment(name, first, s, max_seen);
            if (r == Scan::Loaded)
            {
                segs.push_back(s);
                total += s.bytes;
            }
            else if (r == Scan::Empty)
            {
                (void)port::unlink_file(dir + "/" + name, e);
                max_seen = std::max(max_seen, first > 0 ? first - 1 : 0);
            }
        }
        next_seq = max_seen + 1;
        delete_done_segments();
        // A backlog over a lowered bound: the oldest go, but never the newest segment.
        std::uint64_t trimmed = 0;
        std::size_t trimmed_segs = 0;
        while (total > lim.max_bytes && segs.size() > 1)
        {
            trimmed += drop_front_segment();
            ++trimmed_segs;
        }
        if (trimmed_segs > 0)
        {
            int ignored = 0;
            (void)port::sync_dir(dir, ignored);
            port::log(port::Level::Warning,
                      "alert log: [queue] max_bytes lowered to %llu: the %zu oldest segment(s) "
                      "deleted, %llu unacknowledged alert(s) dropped",
                      static_cast<unsigned long long>(lim.max_bytes), trimmed_segs,
                      static_cast<unsigned long long>(trimmed));
        }
        if (ring_count > 0)
        {
            // Alerts taken in memory before the dir could be read: number them after the disk's.
            std::uint64_t seq = next_seq;
            for (std::size_t at = 0; at < ring.size();)
            {
                MemHeader m{};
                ring.read(at, &m, sizeof m);
                m.seq = seq++;
                ring.write(at, &m, sizeof m);
                at += kMemHeader + m.len;
            }
            next_seq = seq;
        }
        win_head = 0;
        win_count = 0;
        acked_pending = 0;
        mem_cursor = 0;
        cursor = {segs.empty() ? 0 : segs.front().first_seq, kSegHeader};
        front_hint = cursor;
        loaded = true;
        std::uint64_t live = 0;
        for (const Segment& s : segs)
            live += s.live;
        if (live > 0)
            port::log(port::Level::Notice,
                      "alert log: %llu unacknowledged alert(s) in %zu segment(s) reloaded from %s",
                      static_cast<unsigned long long>(live), segs.size(), dir.c_str());
        return true;
    }

    void try_repair()
    {
        std::string err;
        if (port::ensure_writable_dir(dir, err) != port::DirStatus::Writable)
            return;
        if (!loaded && !load(err))
            return;
        int e = 0;
        if (tail.is_open() && tail_dirty)
        {
            if (!tail.sync(e))
                return;
            tail_dirty = false;
        }
        tail.close();
        // The old tail may end in a write that failed half way: appends go to a new segment.
        if (!segs.empty())
            segs.back().sealed = true;
        const std::size_t moved = ring_count;
        std::string path = dir;
        if (ring_count > 0 && !flush_ring(e, path))
            return;
        failing = false;
        fail_logged = false;
        port::log(port::Level::Notice,
                  "alert log: the state dir takes writes again (alert journal writable again): "
                  "%zu alert(s) held in memory written to it (%llu accepted while it was not "
                  "writable)",
                  moved, static_cast<unsigned long long>(not_persisted));
    }

    // ---- sending ----
    void too_big(InFlight e, std::size_t cap)
    {
        ++dropped;
        port::log(port::Level::Warning,
                  "alert log: alert %llu is larger than the send buffer (%zu bytes); dropped",
                  static_cast<unsigned long long>(e.seq), cap);
        e.state = State::Acked;
        ++acked_pending;
        win_push(e);
        pop_window_done();
    }

    bool next_from_disk(std::uint64_t& seq, std::span<char> out, std::size_t& len)
    {
        while (win_count < win.size())
        {
            auto it =
                std::lower_bound(segs.begin(), segs.end(), cursor.seg,
                                 [](const Segment& s, std::uint64_t v) { return s.first_seq < v; });
            if (it == segs.end())
                return false;
            if (it->first_seq != cursor.seg)
                cursor = {it->first_seq, kSegHeader};
            cursor.off = std::max<std::uint64_t>(cursor.off, kSegHeader);
            const Segment& s = *it;
            if (cursor.off >= s.bytes)
            {
                if (it + 1 == segs.end())
                    return false; // stays at the end of the last segment
                cursor = {(it + 1)->first_seq, kSegHeader};
                continue;
            }
            port::SegmentFile* f = file_for(s);
            RecHeader h{};
            if (f == nullptr)
            {
                cursor.off = s.bytes;
                continue;
            }
            if (!read_frame_recent(*f, cursor.off, s.bytes, s.first_seq, h, out))
            {
                std::uint64_t q = 0;
                cursor.off = find_frame(*f, cursor.off + 1, s.bytes, s.first_seq, q) ? q : s.bytes;
                continue;
            }
            const InFlight e{h.seq, s.first_seq, cursor.off,
                             static_cast<std::uint32_t>(kRecHeader + h.len), State::Pending};
            cursor.off += e.frame;
            if (h.seq <= watermark)
                continue;
            if (h.len > out.size())
            {
                too_big(e, out.size());
                continue;
            }
            seq = h.seq;
            len = h.len;
            win_push(e);
            return true;
        }
        return false;
    }

    bool next_from_memory(std::uint64_t& seq, std::span<char> out, std::size_t& len)
    {
        while (win_count < win.size() && mem_cursor < ring.size())
        {
            MemHeader m{};
            ring.read(mem_cursor, &m, sizeof m);
            const std::size_t at = mem_cursor;
            mem_cursor += kMemHeader + m.len;
            if (m.seq <= watermark)
                continue;
            const InFlight e{m.seq, kMem, 0, 0, State::Pending};
            if (m.len > out.size())
            {
                too_big(e, out.size());
                continue;
            }
            ring.read(at + kMemHeader, out.data(), m.len);
            seq = m.seq;
            len = m.len;
            win_push(e);
            return true;
        }
        return false;
    }
};

AlertLog::AlertLog(const AlertLogLimits& limits) : impl_(std::make_unique<Impl>(limits)) {}

AlertLog::~AlertLog()
{
    close();
}

bool AlertLog::open(const std::string& dir, std::int64_t wall_s, std::string& err)
{
    (void)wall_s; // ages are applied by maintain()
    Impl& m = *impl_;
    m.dir = dir;
    if (dir.empty())
        return true;
    const bool loaded = m.load(err);
    m.recent.valid = false; // loading may have cut a torn tail
    if (!loaded)
    {
        // The caller logs `err`; nothing more is said until the dir takes writes.
        m.failing = true;
        m.fail_logged = true;
        return false;
    }
    std::string perr;
    if (port::ensure_writable_dir(dir, perr) != port::DirStatus::Writable)
    {
        m.failing = true;
        m.fail_logged = true;
        err = "alert log: cannot write the alert journal: " + perr;
        return false;
    }
    return true;
}

void AlertLog::close()
{
    Impl& m = *impl_;
    if (!m.dir.empty() && m.loaded && m.watermark != m.persisted)
        m.write_watermark();
}

AlertLog::AppendResult
AlertLog::append(std::string_view record, Policy policy, std::int64_t wall_s, std::uint64_t& seq)
{
    Impl& m = *impl_;
    if (record.size() > m.lim.max_record)
        return AppendResult::TooLarge;
    if (m.dir.empty())
        return m.mem_append(record, policy, wall_s, seq);
    if (!m.failing && m.loaded)
    {
        AppendResult r = AppendResult::Full;
        if (m.disk_append(record, policy, wall_s, seq, r))
            return r;
    }
    if (policy == Policy::Wait)
        return AppendResult::Full;
    (void)m.mem_append(record, Policy::DropOldest, wall_s, seq);
    ++m.not_persisted;
    return AppendResult::NotDurable;
}

bool AlertLog::commit()
{
    Impl& m = *impl_;
    if (m.dir.empty())
        return true;
    if (m.failing || !m.loaded)
        return false;
    int e = 0;
    std::string bad;
    if (m.tail_dirty)
    {
        ++m.commits;
        if (m.tail.sync(e))
            m.tail_dirty = false;
        else
            bad = m.path_of(m.tail_key);
    }
    if (bad.empty() && m.dir_dirty)
    {
        if (port::sync_dir(m.dir, e))
            m.dir_dirty = false;
        else
            bad = m.dir;
    }
    if (!bad.empty())
    {
        // What was written since the last commit may not be on disk.
        m.not_persisted += m.uncommitted;
        m.uncommitted = 0;
        m.fail(bad, e);
        return false;
    }
    m.uncommitted = 0;
    return true;
}

bool AlertLog::full(std::size_t bytes) const
{
    const Impl& m = *impl_;
    if (bytes > m.lim.max_record)
        return false; // refused as TooLarge, not for want of room
    if (m.dir.empty())
        return m.ring.free_space() < kMemHeader + bytes;
    if (m.failing || !m.loaded)
        return true;
    return m.total + kRecHeader + bytes + (m.tail_appendable() ? 0 : kSegHeader) > m.lim.max_bytes;
}

bool AlertLog::next_unsent(std::uint64_t& seq, std::span<char> out, std::size_t& len)
{
    Impl& m = *impl_;
    if (m.loaded && m.next_from_disk(seq, out, len))
        return true;
    return m.next_from_memory(seq, out, len);
}

void AlertLog::rewind_unsent()
{
    Impl& m = *impl_;
    m.win_head = 0;
    m.win_count = 0;
    m.acked_pending = 0;
    m.mem_cursor = 0;
    if (m.find_seg(m.front_hint.seg) != nullptr)
        m.cursor = m.front_hint;
    else
        m.cursor = {m.segs.empty() ? 0 : m.segs.front().first_seq, kSegHeader};
}

void AlertLog::ack(std::uint64_t seq)
{
    Impl& m = *impl_;
    if (seq <= m.watermark)
        return;
    const std::size_t i = m.win_find(seq);
    if (i == m.win_count || m.win_at(i).state != Impl::State::Pending)
        return;
    m.win_at(i).state = Impl::State::Acked;
    ++m.acked_pending;
    m.pop_window_done();
}

void AlertLog::maintain(std::int64_t now_ms, std::int64_t wall_s)
{
    Impl& m = *impl_;
    if (m.next_probe_ms < 0)
        m.next_probe_ms = now_ms + kProbeMs;
    if (!m.dir.empty() && (m.failing || !m.loaded) && now_ms >= m.next_probe_ms)
    {
        m.next_probe_ms = now_ms + kProbeMs;
        m.try_repair();
    }
    if (m.lim.max_age_s > 0)
        m.expire(wall_s - m.lim.max_age_s);
    if (m.dir.empty() || !m.loaded)
        return;
    m.delete_done_segments();
    if (!m.failing && m.watermark != m.persisted && now_ms >= m.next_ack_ms)
    {
        m.next_ack_ms = now_ms + kAckPersistMs;
        m.write_watermark();
    }
}

std::uint64_t AlertLog::last_seq() const
{
    return impl_->next_seq - 1;
}

std::uint64_t AlertLog::depth() const
{
    const Impl& m = *impl_;
    std::uint64_t live = m.ring_count;
    for (const Impl::Segment& s : m.segs)
        live += s.live;
    return live > m.acked_pending ? live - m.acked_pending : 0;
}
std::uint64_t AlertLog::dropped() const
{
    return impl_->dropped;
}
std::uint64_t AlertLog::corrupt() const
{
    return impl_->corrupt;
}
std::uint64_t AlertLog::not_persisted() const
{
    return impl_->not_persisted;
}
std::uint64_t AlertLog::disk_bytes() const
{
    return impl_->total;
}
std::uint64_t AlertLog::commits() const
{
    return impl_->commits;
}

} // namespace ga
