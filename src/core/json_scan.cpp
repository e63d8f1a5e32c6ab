// SPDX-License-Identifier: MIT
// One forward pass over the bytes with an explicit, fixed-size nesting stack: no recursion (a
// hostile sensor cannot grow our stack) and no heap (the hot path must not allocate).
#include "json_scan.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <system_error>

namespace ga
{

const char* verdict_name(Verdict v)
{
    switch (v)
    {
    case Verdict::Above:
        return "above";
    case Verdict::NotAbove:
        return "not_above";
    case Verdict::NotJson:
        return "not_json";
    case Verdict::BadUtf8:
        return "bad_utf8";
    case Verdict::TooDeep:
        return "too_deep";
    case Verdict::TooLarge:
        return "too_large";
    case Verdict::PathAbsent:
        return "path_absent";
    case Verdict::NotNumber:
        return "not_number";
    case Verdict::DuplicateKey:
        return "duplicate_key";
    }
    return "unknown";
}

bool parse_field_path(std::string_view dotted, FieldPath& out)
{
    FieldPath result;
    if (dotted.empty())
    {
        return false;
    }
    std::size_t start = 0;
    while (true)
    {
        const std::size_t dot = dotted.find('.', start);
        const std::size_t end = dot == std::string_view::npos ? dotted.size() : dot;
        if (end == start || result.count == kMaxPathSegments)
        {
            return false;
        }
        result.segments[result.count++] = dotted.substr(start, end - start);
        if (dot == std::string_view::npos)
        {
            break;
        }
        start = dot + 1;
    }
    out = result;
    return true;
}

namespace
{

// Validation outcome; Ok means "valid so far".
enum class Status : std::uint8_t
{
    Ok,
    NotJson,
    BadUtf8,
    TooDeep,
};

// What the value about to be scanned means for the path.
enum class Role : std::uint8_t
{
    None,    // not on the path
    Descend, // must be an object holding the next segment
    Target,  // the value at the full path
};

// What the path lookup found so far. Only the first match of a key is followed, so each state
// is set once, except Duplicate which overrides any earlier finding.
enum class Found : std::uint8_t
{
    Nothing,
    Number,
    NotNumber,
    ThroughNonObject,
    Duplicate,
};

constexpr bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

constexpr bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

constexpr int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
    {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f')
    {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F')
    {
        return c - 'A' + 10;
    }
    return -1;
}

// Compares an unescaped key against a path segment as the key's bytes are produced, so no
// unescaped copy is ever needed.
class KeyMatcher
{
  public:
    explicit KeyMatcher(std::string_view segment, bool active) : seg_(segment), ok_(active) {}
    void feed(unsigned char b)
    {
        if (ok_)
        {
            ok_ = pos_ < seg_.size() && static_cast<unsigned char>(seg_[pos_]) == b;
            ++pos_;
        }
    }
    void feed_code_point(std::uint32_t cp)
    {
        if (cp < 0x80U)
        {
            feed(static_cast<unsigned char>(cp));
        }
        else if (cp < 0x800U)
        {
            feed(static_cast<unsigned char>(0xC0U | (cp >> 6U)));
            feed(static_cast<unsigned char>(0x80U | (cp & 0x3FU)));
        }
        else if (cp < 0x10000U)
        {
            feed(static_cast<unsigned char>(0xE0U | (cp >> 12U)));
            feed(static_cast<unsigned char>(0x80U | ((cp >> 6U) & 0x3FU)));
            feed(static_cast<unsigned char>(0x80U | (cp & 0x3FU)));
        }
        else
        {
            feed(static_cast<unsigned char>(0xF0U | (cp >> 18U)));
            feed(static_cast<unsigned char>(0x80U | ((cp >> 12U) & 0x3FU)));
            feed(static_cast<unsigned char>(0x80U | ((cp >> 6U) & 0x3FU)));
            feed(static_cast<unsigned char>(0x80U | (cp & 0x3FU)));
        }
    }
    [[nodiscard]] bool matched() const { return ok_ && pos_ == seg_.size(); }

  private:
    std::string_view seg_;
    std::size_t pos_ = 0;
    bool ok_;
};

// Saturating add keeps exponent arithmetic on absurd inputs ("1e99999999999999999999") defined.
constexpr std::int64_t kExpCap = std::int64_t{1} << 40;
constexpr std::int64_t sat_add(std::int64_t a, std::int64_t b)
{
    const std::int64_t s = a + b; // both operands are within +/- 2^41, no overflow
    return s > kExpCap ? kExpCap : (s < -kExpCap ? -kExpCap : s);
}

// Converts a grammar-checked JSON number to the nearest double. from_chars reports
// result_out_of_range without a value; we then pick what IEEE 754 round-to-nearest gives: the
// number's decimal magnitude (the power of ten of its leading significant digit) is either far
// above DBL_MAX (>= 308) or far below the smallest subnormal (<= -324), so its sign decides
// between +/-infinity and +/-0. Using the magnitude, not just the exponent's sign, also gets
// "0.000...1e300" and "1000...0e-300" right.
double to_double(const char* first, const char* last)
{
    double v = 0.0;
    const auto [ptr, ec] = std::from_chars(first, last, v);
    if (ec == std::errc{} && ptr == last)
    {
        return v;
    }
    const bool negative = *first == '-';
    const char* p = negative ? first + 1 : first;
    std::int64_t magnitude = 0; // power of ten of the leading significant digit
    bool seen_significant = false;
    std::int64_t int_digits = 0;
    while (p != last && is_digit(static_cast<unsigned char>(*p)))
    {
        if (*p != '0' || seen_significant)
        {
            seen_significant = true;
            int_digits = sat_add(int_digits, 1);
        }
        ++p;
    }
    if (seen_significant)
    {
        magnitude = int_digits - 1;
    }
    if (p != last && *p == '.')
    {
        ++p;
        std::int64_t zeros = 0;
        while (p != last && is_digit(static_cast<unsigned char>(*p)))
        {
            if (!seen_significant)
            {
                if (*p == '0')
                {
                    zeros = sat_add(zeros, 1);
                }
                else
                {
                    seen_significant = true;
                    magnitude = -(zeros + 1);
                }
            }
            ++p;
        }
    }
    std::int64_t exponent = 0;
    if (p != last && (*p == 'e' || *p == 'E'))
    {
        ++p;
        bool exp_negative = false;
        if (*p == '+' || *p == '-')
        {
            exp_negative = *p == '-';
            ++p;
        }
        while (p != last)
        {
            exponent = sat_add(exponent * 10 > kExpCap ? kExpCap : exponent * 10, *p - '0');
            ++p;
        }
        if (exp_negative)
        {
            exponent = -exponent;
        }
    }
    const double mag_value =
        sat_add(magnitude, exponent) >= 0 ? std::numeric_limits<double>::infinity() : 0.0;
    return negative ? -mag_value : mag_value;
}

class Scanner
{
  public:
    Scanner(std::string_view text, const FieldPath* path, std::size_t max_depth)
        : p_(reinterpret_cast<const unsigned char*>(text.data())), end_(p_ + text.size()),
          path_(path != nullptr && path->count > 0 ? path : nullptr),
          max_depth_(max_depth < kMaxScanDepth ? max_depth : kMaxScanDepth)
    {
    }

    Status run();

    [[nodiscard]] Found found() const { return found_; }
    [[nodiscard]] double value() const { return value_; }

  private:
    enum class Expect : std::uint8_t
    {
        Value,        // any value
        ValueOrClose, // after '[': a value or ']'
        KeyOrClose,   // after '{': a key or '}'
        Key,          // after ',' in an object
        Colon,        // after a key
        CommaOrClose, // after a value inside a container
    };

    Status string(KeyMatcher& m);
    Status number(bool convert);
    Status literal(std::string_view word);
    Status open(bool is_object);
    void close();
    void value_role_scalar(bool is_number);
    // A duplicate on the path makes the message ambiguous whatever else was found.
    void set_found(Found f)
    {
        if (found_ != Found::Duplicate)
        {
            found_ = f;
        }
    }

    const unsigned char* p_;
    const unsigned char* end_;
    const FieldPath* path_;
    std::size_t max_depth_;

    std::size_t depth_ = 0;
    std::array<bool, kMaxScanDepth> is_object_{};
    // Levels 1..path_open_ are the objects the path runs through; keys at level L are compared
    // with segment L-1. Only the first matching key is followed, so one object per level.
    std::size_t path_open_ = 0;
    std::array<bool, kMaxPathSegments> seen_{};
    Role role_ = Role::Descend; // the root value must be the object holding segment 0

    Found found_ = Found::Nothing;
    double value_ = 0.0;
};

void Scanner::value_role_scalar(bool is_number)
{
    // Numbers at the target were already recorded by number(); everything else is a miss.
    if (role_ == Role::Target && !is_number)
    {
        set_found(Found::NotNumber);
    }
    else if (role_ == Role::Descend && path_ != nullptr)
    {
        set_found(Found::ThroughNonObject);
    }
    role_ = Role::None;
}

Status Scanner::open(bool is_object)
{
    if (depth_ >= max_depth_)
    {
        return Status::TooDeep;
    }
    is_object_[depth_] = is_object;
    ++depth_;
    if (path_ != nullptr && role_ != Role::None)
    {
        if (role_ == Role::Descend && is_object)
        {
            path_open_ = depth_;
            seen_[depth_ - 1] = false;
        }
        else if (role_ == Role::Descend)
        {
            set_found(Found::ThroughNonObject);
        }
        else
        {
            set_found(Found::NotNumber);
        }
    }
    role_ = Role::None;
    return Status::Ok;
}

void Scanner::close()
{
    if (depth_ == path_open_)
    {
        --path_open_;
    }
    --depth_;
}

Status Scanner::literal(std::string_view word)
{
    for (const char c : word)
    {
        if (p_ == end_ || *p_ != static_cast<unsigned char>(c))
        {
            return Status::NotJson;
        }
        ++p_;
    }
    return Status::Ok;
}

Status Scanner::number(bool convert)
{
    const unsigned char* const first = p_;
    if (*p_ == '-')
    {
        ++p_;
    }
    if (p_ == end_)
    {
        return Status::NotJson;
    }
    if (*p_ == '0')
    {
        ++p_; // a leading zero stands alone; "01" fails on the '1' that follows
    }
    else if (*p_ >= '1' && *p_ <= '9')
    {
        while (p_ != end_ && is_digit(*p_))
        {
            ++p_;
        }
    }
    else
    {
        return Status::NotJson;
    }
    if (p_ != end_ && *p_ == '.')
    {
        ++p_;
        if (p_ == end_ || !is_digit(*p_))
        {
            return Status::NotJson;
        }
        while (p_ != end_ && is_digit(*p_))
        {
            ++p_;
        }
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E'))
    {
        ++p_;
        if (p_ != end_ && (*p_ == '+' || *p_ == '-'))
        {
            ++p_;
        }
        if (p_ == end_ || !is_digit(*p_))
        {
            return Status::NotJson;
        }
        while (p_ != end_ && is_digit(*p_))
        {
            ++p_;
        }
    }
    if (convert)
    {
        value_ = to_double(reinterpret_cast<const char*>(first), reinterpret_cast<const char*>(p_));
        set_found(Found::Number);
    }
    return Status::Ok;
}

// Scans a string whose opening quote is at p_. Checks escapes, control characters and UTF-8
// (shortest form, no surrogates, at most U+10FFFF) and feeds the unescaped bytes to `m`.
Status Scanner::string(KeyMatcher& m)
{
    ++p_; // opening quote
    while (true)
    {
        if (p_ == end_)
        {
            return Status::NotJson;
        }
        const unsigned char c = *p_;
        if (c == '"')
        {
            ++p_;
            return Status::Ok;
        }
        if (c < 0x20U)
        {
            return Status::NotJson;
        }
        if (c < 0x80U && c != '\\')
        {
            m.feed(c);
            ++p_;
            continue;
        }
        if (c == '\\')
        {
            if (end_ - p_ < 2)
            {
                return Status::NotJson;
            }
            const unsigned char e = p_[1];
            p_ += 2;
            switch (e)
            {
            case '"':
            case '\\':
            case '/':
                m.feed(e);
                continue;
            case 'b':
                m.feed('\b');
                continue;
            case 'f':
                m.feed('\f');
                continue;
            case 'n':
                m.feed('\n');
                continue;
            case 'r':
                m.feed('\r');
                continue;
            case 't':
                m.feed('\t');
                continue;
            case 'u':
                break;
            default:
                return Status::NotJson;
            }
            const auto hex4 = [this](std::uint32_t& out)
            {
                if (end_ - p_ < 4)
                {
                    return false;
                }
                std::uint32_t v = 0;
                for (int i = 0; i < 4; ++i)
                {
                    const int h = hex_value(p_[i]);
                    if (h < 0)
                    {
                        return false;
                    }
                    v = (v << 4U) | static_cast<std::uint32_t>(h);
                }
                p_ += 4;
                out = v;
                return true;
            };
            std::uint32_t cp = 0;
            if (!hex4(cp))
            {
                return Status::NotJson;
            }
            if (cp >= 0xDC00U && cp <= 0xDFFFU)
            {
                return Status::BadUtf8; // a low surrogate with no high one before it
            }
            if (cp >= 0xD800U && cp <= 0xDBFFU)
            {
                // A high surrogate is only meaningful as the first half of a \u pair.
                if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u')
                {
                    return Status::BadUtf8;
                }
                p_ += 2;
                std::uint32_t low = 0;
                if (!hex4(low))
                {
                    return Status::NotJson;
                }
                if (low < 0xDC00U || low > 0xDFFFU)
                {
                    return Status::BadUtf8;
                }
                cp = 0x10000U + ((cp - 0xD800U) << 10U) + (low - 0xDC00U);
            }
            m.feed_code_point(cp);
            continue;
        }
        // A multi-byte UTF-8 sequence: the lead byte fixes the length and the allowed range of
        // the second byte, which is what excludes overlong forms, surrogates and > U+10FFFF.
        std::size_t len = 0;
        unsigned char lo = 0x80U;
        unsigned char hi = 0xBFU;
        if (c >= 0xC2U && c <= 0xDFU)
        {
            len = 2;
        }
        else if (c >= 0xE0U && c <= 0xEFU)
        {
            len = 3;
            lo = c == 0xE0U ? 0xA0U : 0x80U;
            hi = c == 0xEDU ? 0x9FU : 0xBFU;
        }
        else if (c >= 0xF0U && c <= 0xF4U)
        {
            len = 4;
            lo = c == 0xF0U ? 0x90U : 0x80U;
            hi = c == 0xF4U ? 0x8FU : 0xBFU;
        }
        else
        {
            return Status::BadUtf8; // stray continuation byte, C0/C1 overlong lead, F5..FF
        }
        if (static_cast<std::size_t>(end_ - p_) < len)
        {
            return Status::BadUtf8; // truncated sequence
        }
        if (p_[1] < lo || p_[1] > hi)
        {
            return Status::BadUtf8;
        }
        for (std::size_t i = 2; i < len; ++i)
        {
            if (p_[i] < 0x80U || p_[i] > 0xBFU)
            {
                return Status::BadUtf8;
            }
        }
        for (std::size_t i = 0; i < len; ++i)
        {
            m.feed(p_[i]);
        }
        p_ += len;
    }
}

Status Scanner::run()
{
    Expect expect = Expect::Value;
    KeyMatcher no_match({}, false);
    while (true)
    {
        while (p_ != end_ && is_ws(*p_))
        {
            ++p_;
        }
        if (p_ == end_)
        {
            // Complete only when the root value has been read and every container closed.
            return depth_ == 0 && expect == Expect::CommaOrClose ? Status::Ok : Status::NotJson;
        }
        const unsigned char c = *p_;
        switch (expect)
        {
        case Expect::ValueOrClose:
            if (c == ']')
            {
                ++p_;
                close();
                expect = Expect::CommaOrClose;
                continue;
            }
            [[fallthrough]];
        case Expect::Value:
        {
            Status s = Status::Ok;
            if (c == '{')
            {
                ++p_;
                s = open(true);
                expect = Expect::KeyOrClose;
            }
            else if (c == '[')
            {
                ++p_;
                s = open(false);
                expect = Expect::ValueOrClose;
            }
            else
            {
                if (c == '"')
                {
                    s = string(no_match);
                }
                else if (c == '-' || is_digit(c))
                {
                    s = number(role_ == Role::Target);
                }
                else if (c == 't')
                {
                    s = literal("true");
                }
                else if (c == 'f')
                {
                    s = literal("false");
                }
                else if (c == 'n')
                {
                    s = literal("null");
                }
                else
                {
                    return Status::NotJson;
                }
                value_role_scalar(c == '-' || is_digit(c));
                expect = Expect::CommaOrClose;
            }
            if (s != Status::Ok)
            {
                return s;
            }
            continue;
        }
        case Expect::KeyOrClose:
            if (c == '}')
            {
                ++p_;
                close();
                expect = Expect::CommaOrClose;
                continue;
            }
            [[fallthrough]];
        case Expect::Key:
        {
            if (c != '"')
            {
                return Status::NotJson;
            }
            const bool on_path = path_ != nullptr && depth_ == path_open_;
            KeyMatcher m(on_path ? path_->segments[depth_ - 1] : std::string_view{}, on_path);
            const Status s = string(m);
            if (s != Status::Ok)
            {
                return s;
            }
            if (on_path && m.matched())
            {
                if (seen_[depth_ - 1])
                {
                    found_ = Found::Duplicate; // ambiguous: which one would the cloud see?
                }
                else
                {
                    seen_[depth_ - 1] = true;
                    role_ = depth_ == path_->count ? Role::Target : Role::Descend;
                }
            }
            expect = Expect::Colon;
            continue;
        }
        case Expect::Colon:
            if (c != ':')
            {
                return Status::NotJson;
            }
            ++p_;
            expect = Expect::Value;
            continue;
        case Expect::CommaOrClose:
            if (depth_ == 0)
            {
                return Status::NotJson; // text after the root value
            }
            ++p_;
            if (c == ',')
            {
                expect = is_object_[depth_ - 1] ? Expect::Key : Expect::Value;
            }
            else if (is_object_[depth_ - 1] ? c == '}' : c == ']')
            {
                close();
            }
            else
            {
                return Status::NotJson;
            }
            continue;
        }
    }
}

Verdict status_verdict(Status s)
{
    switch (s)
    {
    case Status::BadUtf8:
        return Verdict::BadUtf8;
    case Status::TooDeep:
        return Verdict::TooDeep;
    case Status::NotJson:
    case Status::Ok:
        break;
    }
    return Verdict::NotJson;
}

} // namespace

ScanResult scan_sensor_message(std::string_view message,
                               const FieldPath& path,
                               double threshold,
                               const ScanLimits& limits)
{
    if (message.size() > limits.max_bytes)
    {
        return {Verdict::TooLarge, 0.0};
    }
    Scanner scanner(message, &path, limits.max_depth);
    const Status s = scanner.run();
    if (s != Status::Ok)
    {
        return {status_verdict(s), 0.0}; // an invalid message is rejected whatever the path held
    }
    switch (scanner.found())
    {
    case Found::Number:
        return {scanner.value() > threshold ? Verdict::Above : Verdict::NotAbove, scanner.value()};
    case Found::NotNumber:
        return {Verdict::NotNumber, 0.0};
    case Found::Duplicate:
        return {Verdict::DuplicateKey, 0.0};
    case Found::Nothing:
    case Found::ThroughNonObject:
        break;
    }
    return {Verdict::PathAbsent, 0.0};
}

bool is_valid_json(std::string_view text, const ScanLimits& limits)
{
    if (text.size() > limits.max_bytes)
    {
        return false;
    }
    Scanner scanner(text, nullptr, limits.max_depth);
    return scanner.run() == Status::Ok;
}

} // namespace ga
