// SPDX-License-Identifier: MIT
// A fixed-capacity FIFO of bytes, allocated once. Records are copied in and out with wrap-around,
// so callers never need contiguous space. Not thread-safe: owners add their own locking.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>

namespace ga
{

class ByteRing
{
  public:
    explicit ByteRing(std::size_t capacity)
        : buf_(std::make_unique_for_overwrite<unsigned char[]>(capacity)), cap_(capacity)
    {
    }

    [[nodiscard]] std::size_t capacity() const { return cap_; }
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] std::size_t free_space() const { return cap_ - size_; }

    /// Appends bytes; the caller checked free_space().
    void push(const void* data, std::size_t n)
    {
        if (n == 0)
            return; // an empty view may carry a null pointer
        const auto* p = static_cast<const unsigned char*>(data);
        std::size_t tail = (head_ + size_) % cap_;
        const std::size_t first = n < cap_ - tail ? n : cap_ - tail;
        std::memcpy(buf_.get() + tail, p, first);
        std::memcpy(buf_.get(), p + first, n - first);
        size_ += n;
    }
    /// Copies n bytes starting `offset` bytes after the head.
    void read(std::size_t offset, void* out, std::size_t n) const
    {
        if (n == 0)
            return; // an empty view may carry a null pointer
        auto* o = static_cast<unsigned char*>(out);
        const std::size_t start = (head_ + offset) % cap_;
        const std::size_t first = n < cap_ - start ? n : cap_ - start;
        std::memcpy(o, buf_.get() + start, first);
        std::memcpy(o + first, buf_.get(), n - first);
    }
    /// Overwrites n bytes at `offset` after the head (used to flip a flag in a record header).
    void write(std::size_t offset, const void* data, std::size_t n)
    {
        if (n == 0)
            return; // an empty view may carry a null pointer
        const auto* p = static_cast<const unsigned char*>(data);
        const std::size_t start = (head_ + offset) % cap_;
        const std::size_t first = n < cap_ - start ? n : cap_ - start;
        std::memcpy(buf_.get() + start, p, first);
        std::memcpy(buf_.get(), p + first, n - first);
    }
    void pop(std::size_t n)
    {
        head_ = (head_ + n) % cap_;
        size_ -= n;
    }
    void clear()
    {
        head_ = 0;
        size_ = 0;
    }

  private:
    std::unique_ptr<unsigned char[]> buf_;
    std::size_t cap_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace ga
