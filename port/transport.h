// SPDX-License-Identifier: MIT
// A non-blocking client byte stream for the event loop: name resolution that never blocks the
// loop (polled), TCP connect trying each resolved address in turn (so `localhost` works whether
// it maps to ::1, 127.0.0.1 or both), and TLS 1.2+ with mbedtls (trust anchors from a CA file or
// the system bundle, server name sent as SNI and checked against the certificate). Everything is
// driven by progress()/read()/write() when fd() is ready or on the loop's tick.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace ga::port
{

struct TransportConfig
{
    std::string host; // a name or a numeric IPv4/IPv6 address
    std::uint16_t port = 0;
    bool tls = true;
    std::string ca_file;                     // PEM trust anchors; empty: the system bundle
    std::string server_name;                 // TLS name to check; empty: `host`
    std::int64_t connect_timeout_ms = 30000; // resolve + TCP connect + TLS handshake, per try
};

class Transport
{
  public:
    Transport();
    ~Transport();
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    /// Loads the trust anchors once (with TLS); false with `err` naming the file and the cause
    /// when they cannot be read or parsed. Call before start().
    [[nodiscard]] bool configure(const TransportConfig& cfg, std::string& err);

    enum class Status : std::uint8_t
    {
        Closed,     // nothing started, or close() was called
        InProgress, // resolving, connecting or in the TLS handshake
        Open,       // ready for read()/write()
        Failed,     // error() says why; close() before the next start()
    };
    /// Starts resolving and connecting (closing any earlier connection first).
    Status start(std::int64_t now_ms);
    /// Advances resolution, connect and handshake; call whenever fd() is ready and on every
    /// tick (resolution and timeouts are polled). Returns the status after the step.
    Status progress(std::int64_t now_ms);
    [[nodiscard]] Status status() const;

    /// The socket to watch, or -1 (none yet: resolving). Changes while addresses are tried.
    [[nodiscard]] int fd() const;
    /// Whether the loop should also wait for writability (connect in progress, a TLS step that
    /// wants to write, or a partial write to finish).
    [[nodiscard]] bool wants_write() const;

    /// Once Open. Returns bytes read (> 0), 0 when nothing more can be read now, -1 when the
    /// peer closed or an error happened (error() says which; status() is Failed). Call until 0:
    /// TLS may hold decrypted bytes the socket no longer shows as readable.
    long read(std::span<std::uint8_t> out);
    /// Once Open. Returns bytes taken (> 0), 0 when the socket cannot take more now, -1 on
    /// error. After 0, call again with the same bytes at the front of `data` (TLS requires it).
    long write(std::span<const std::uint8_t> data);

    void close();
    [[nodiscard]] const std::string& error() const;
    /// "host:port" plus the address in use, for log lines.
    [[nodiscard]] std::string peer() const;
    /// Once Open: "TLSv1.2 TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384" (what the handshake agreed),
    /// or "plain TCP", for log lines.
    [[nodiscard]] std::string security() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ga::port
