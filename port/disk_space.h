// SPDX-License-Identifier: MIT
// Free space on the file system holding a path (for diagnostics: is there room for the queue?).
#pragma once

#include <cstdint>
#include <string>

namespace ga::port
{

/// Bytes an unprivileged writer may still use on the file system holding `path` (blocks
/// available to non-root users times the fragment size). False with `err_no`.
[[nodiscard]] bool available_bytes(const std::string& path, std::uint64_t& bytes, int& err_no);

} // namespace ga::port
