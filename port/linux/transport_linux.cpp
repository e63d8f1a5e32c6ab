// SPDX-License-Identifier: MIT
// The Linux transport: numeric hosts parsed in place, names resolved by glibc's getaddrinfo_a
// (polled, so the loop never blocks), non-blocking TCP over each resolved address in turn, and
// TLS with mbedtls 2.28 over our own send/recv callbacks.
#include "transport.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h> // only for the MBEDTLS_ERR_NET_* codes our callbacks return
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string_view>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ga::port
{
namespace
{

constexpr const char* kSystemBundle = "/etc/ssl/certs/ca-certificates.crt";
constexpr std::size_t kMaxRecord = 16384; // TLS plaintext record limit
// TLS reads from the socket through this buffer: mbedtls asks for a record's 5-byte header and
// then its body, two recv() calls per record; one recv() of up to this much serves many records.
constexpr std::size_t kRecvBuffer = 16384;

// One getaddrinfo_a request. glibc's helper thread writes into it until it finishes, so it must
// outlive an abandoned lookup: one that cannot be cancelled is parked and freed once done.
struct Lookup
{
    gaicb cb{};
    addrinfo hints{};
    std::string name;
    std::string service;

    Lookup() = default;
    Lookup(const Lookup&) = delete;
    Lookup& operator=(const Lookup&) = delete;
    Lookup(Lookup&&) = delete;
    Lookup& operator=(Lookup&&) = delete;
    ~Lookup()
    {
        if (cb.ar_result != nullptr)
            freeaddrinfo(cb.ar_result);
    }
};

std::mutex g_orphans_mutex;
// Never destroyed: lookups still running at exit stay reachable (no leak report, no use after
// free by the helper thread during static destruction).
std::vector<std::unique_ptr<Lookup>>& orphans()
{
    static auto* list = new std::vector<std::unique_ptr<Lookup>>();
    return *list;
}

void reap_orphans()
{
    const std::lock_guard<std::mutex> lock(g_orphans_mutex);
    auto& list = orphans();
    std::erase_if(list, [](const std::unique_ptr<Lookup>& l)
                  { return gai_error(&l->cb) != EAI_INPROGRESS; });
}

void abandon(std::unique_ptr<Lookup> l)
{
    if (gai_cancel(&l->cb) == EAI_NOTCANCELED)
    {
        const std::lock_guard<std::mutex> lock(g_orphans_mutex);
        orphans().push_back(std::move(l));
    }
    // Cancelled or already done: nobody else touches it now; ~Lookup frees any result.
}

std::string mbed_error(int rc)
{
    std::array<char, 160> buf{};
    mbedtls_strerror(rc, buf.data(), buf.size());
    return buf.data();
}

std::string address_text(const sockaddr* sa)
{
    std::array<char, INET6_ADDRSTRLEN> buf{};
    if (sa->sa_family == AF_INET6)
    {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf.data(), buf.size());
        return "[" + std::string(buf.data()) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in4->sin_addr, buf.data(), buf.size());
    return std::string(buf.data()) + ":" + std::to_string(ntohs(in4->sin_port));
}

} // namespace

struct Transport::Impl
{
    enum class Phase : std::uint8_t
    {
        Idle,
        Resolving,
        Connecting,
        Handshake,
        Open,
        Failed,
    };

    TransportConfig cfg;
    bool configured = false;
    bool tls_ready = false;
    bool seeded = false;
    mbedtls_entropy_context entropy{};
    mbedtls_ctr_drbg_context drbg{};
    mbedtls_x509_crt ca{};
    mbedtls_ssl_config conf{};
    mbedtls_ssl_context ssl{};
    bool ssl_active = false;

    Phase phase = Phase::Idle;
    std::unique_ptr<Lookup> lookup;
    addrinfo* addrs = nullptr;
    const addrinfo* next = nullptr; // the next address to try
    int fd = -1;
    std::string addr;   // the address in use, for peer()
    int last_errno = 0; // the last connect failure
    int io_errno = 0;   // errno behind the last failed send/recv in the TLS callbacks
    std::int64_t deadline = 0;
    std::int64_t attempt_deadline = 0; // when to give up on this address for the next one
    bool hs_wants_write = false;
    bool read_wants_write = false;
    bool write_pending = false;
    std::size_t pending_len = 0; // length of a TLS write that must be repeated as it was
    bool read_failed_later = false;
    // The last recv() returned less than it asked for: the socket was empty then. Requests that
    // find the buffer empty answer "want read" without a recv() that would only say EAGAIN,
    // until that answer reaches our caller (read() returning 0, a handshake step waiting): the
    // caller then waits for the socket, and epoll is level-triggered, so bytes that came in the
    // meantime wake the loop at once.
    bool socket_drained = false;
    std::string later_error; // an error met after bytes were returned; reported next read()
    std::string err;
    // Socket bytes received but not yet taken by mbedtls (see kRecvBuffer); allocated on the
    // first TLS connection, pages touched only as far as reads fill it.
    std::unique_ptr<unsigned char[]> rbuf;
    std::size_t rbuf_pos = 0;
    std::size_t rbuf_len = 0;

    Impl()
    {
        mbedtls_entropy_init(&entropy);
        mbedtls_ctr_drbg_init(&drbg);
        mbedtls_x509_crt_init(&ca);
        mbedtls_ssl_config_init(&conf);
        mbedtls_ssl_init(&ssl);
    }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    Impl(Impl&&) = delete;
    Impl& operator=(Impl&&) = delete;
    ~Impl()
    {
        close();
        mbedtls_ssl_free(&ssl);
        mbedtls_ssl_config_free(&conf);
        mbedtls_x509_crt_free(&ca);
        mbedtls_ctr_drbg_free(&drbg);
        mbedtls_entropy_free(&entropy);
    }

    [[nodiscard]] std::string host_port() const
    {
        // Bracket IPv6 literals so the port stays readable.
        if (cfg.host.find(':') != std::string::npos)
            return "[" + cfg.host + "]:" + std::to_string(cfg.port);
        return cfg.host + ":" + std::to_string(cfg.port);
    }

    [[nodiscard]] const std::string& tls_name() const
    {
        return cfg.server_name.empty() ? cfg.host : cfg.server_name;
    }

    Status fail(std::string msg)
    {
        err = std::move(msg);
        phase = Phase::Failed;
        hs_wants_write = false;
        read_wants_write = false;
        write_pending = false;
        return Status::Failed;
    }

    [[nodiscard]] Status status() const
    {
        switch (phase)
        {
        case Phase::Idle:
            return Status::Closed;
        case Phase::Resolving:
        case Phase::Connecting:
        case Phase::Handshake:
            return Status::InProgress;
        case Phase::Open:
            return Status::Open;
        case Phase::Failed:
            break;
        }
        return Status::Failed;
    }

    bool configure(const TransportConfig& c, std::string& out_err)
    {
        close();
        cfg = c;
        configured = false;
        tls_ready = false;
        if (cfg.host.empty() || cfg.port == 0)
        {
            out_err = "transport: host and port are required";
            return false;
        }
        configured = true;
        if (!cfg.tls)
            return true;

        // Reconfiguring starts from fresh trust anchors and settings.
        mbedtls_ssl_config_free(&conf);
        mbedtls_ssl_config_init(&conf);
        mbedtls_x509_crt_free(&ca);
        mbedtls_x509_crt_init(&ca);

        if (!seeded)
        {
            static constexpr std::string_view kPers = "gateway-agent transport";
            const int rc = mbedtls_ctr_drbg_seed(
                &drbg, mbedtls_entropy_func, &entropy,
                reinterpret_cast<const unsigned char*>(kPers.data()), kPers.size());
            if (rc != 0)
            {
                out_err = "TLS: cannot seed the random generator: " + mbed_error(rc);
                return false;
            }
            seeded = true;
        }

        const std::string path = cfg.ca_file.empty() ? kSystemBundle : cfg.ca_file;
        // mbedtls only says "file I/O error"; opening it first gives the OS's reason.
        const int probe = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (probe < 0)
        {
            out_err = "CA file " + path + ": cannot read it: " + std::strerror(errno);
            return false;
        }
        struct stat st
        {
        };
        const bool regular = ::fstat(probe, &st) == 0 && S_ISREG(st.st_mode);
        ::close(probe);
        if (!regular)
        {
            out_err = "CA file " + path + ": cannot read it: not a regular file";
            return false;
        }
        const int rc = mbedtls_x509_crt_parse_file(&ca, path.c_str());
        if (rc == MBEDTLS_ERR_PK_FILE_IO_ERROR)
        {
            out_err = "CA file " + path + ": cannot read it: " + mbed_error(rc);
            return false;
        }
        if (rc < 0 || ca.version == 0)
        {
            out_err = "CA file " + path + ": not PEM (or DER) certificates: " +
                      (rc < 0 ? mbed_error(rc) : std::string("no certificate parsed"));
            return false;
        }
        // rc > 0: some entries of a bundle did not parse; the others are usable trust anchors.

        int crc = mbedtls_ssl_config_defaults(
            &conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
        if (crc != 0)
        {
            out_err = "TLS: cannot set up the configuration: " + mbed_error(crc);
            return false;
        }
        mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                     MBEDTLS_SSL_MINOR_VERSION_3); // TLS 1.2
        mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(&conf, &ca, nullptr);
        mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
        tls_ready = true;
        return true;
    }

    Status start(std::int64_t now_ms)
    {
        close();
        err.clear();
        reap_orphans();
        if (!configured || (cfg.tls && !tls_ready))
            return fail("transport: start() without a successful configure()");
        deadline = now_ms + cfg.connect_timeout_ms;
        const std::string service = std::to_string(cfg.port);

        // A numeric address needs no lookup; getaddrinfo does not block with AI_NUMERICHOST.
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        addrinfo* res = nullptr;
        const int rc = getaddrinfo(cfg.host.c_str(), service.c_str(), &hints, &res);
        if (rc == 0)
        {
            addrs = res;
            next = addrs;
            phase = Phase::Connecting;
            return advance(now_ms);
        }
        if (rc != EAI_NONAME)
            return fail("cannot resolve " + cfg.host + ": " + gai_strerror(rc));

        auto l = std::make_unique<Lookup>();
        l->name = cfg.host;
        l->service = service;
        l->hints.ai_family = AF_UNSPEC;
        l->hints.ai_socktype = SOCK_STREAM;
        l->hints.ai_flags = AI_NUMERICSERV;
        l->cb.ar_name = l->name.c_str();
        l->cb.ar_service = l->service.c_str();
        l->cb.ar_request = &l->hints;
        std::array<gaicb*, 1> list{&l->cb};
        const int arc = getaddrinfo_a(GAI_NOWAIT, list.data(), 1, nullptr);
        if (arc != 0)
            return fail("cannot resolve " + cfg.host + ": " + gai_strerror(arc));
        lookup = std::move(l);
        phase = Phase::Resolving;
        return advance(now_ms);
    }

    // Opens a socket to the next address; on immediate failure moves on. False when none is left
    // (then the transport has failed).
    bool connect_next(std::int64_t now_ms)
    {
        while (next != nullptr)
        {
            const addrinfo* ai = next;
            next = next->ai_next;
            addr = address_text(ai->ai_addr);
            const int s = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                   ai->ai_protocol);
            if (s < 0)
            {
                last_errno = errno;
                continue;
            }
            const int one = 1;
            // MQTT packets are small and latency matters more than packing them.
            (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (::connect(s, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)
            {
                fd = s;
                // An address that never answers (e.g. IPv6 without a route) must leave time for
                // the others: with more to try, it gets half of what is left.
                attempt_deadline = next == nullptr ? deadline : now_ms + (deadline - now_ms) / 2;
                return true;
            }
            last_errno = errno;
            ::close(s);
        }
        fail("cannot connect to " + host_port() + " (last tried " + addr +
             "): " + std::strerror(last_errno != 0 ? last_errno : EHOSTUNREACH));
        return false;
    }

    bool setup_tls()
    {
        mbedtls_ssl_free(&ssl);
        mbedtls_ssl_init(&ssl);
        ssl_active = true;
        int rc = mbedtls_ssl_setup(&ssl, &conf);
        if (rc == 0)
            rc = mbedtls_ssl_set_hostname(&ssl, tls_name().c_str());
        if (rc != 0)
        {
            fail("TLS with " + host_port() + ": " + mbed_error(rc));
            return false;
        }
        if (!rbuf)
            rbuf = std::make_unique_for_overwrite<unsigned char[]>(kRecvBuffer);
        rbuf_pos = 0;
        rbuf_len = 0;
        socket_drained = false;
        mbedtls_ssl_set_bio(&ssl, this, &Impl::bio_send, &Impl::bio_recv, nullptr);
        return true;
    }

    [[nodiscard]] std::string tls_error(int rc) const
    {
        if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED)
        {
            const std::uint32_t flags = mbedtls_ssl_get_verify_result(&ssl);
            std::array<char, 512> buf{};
            mbedtls_x509_crt_verify_info(buf.data(), buf.size(), "", flags);
            // One reason per line; join them for a single log line.
            std::string why;
            std::string_view info(buf.data());
            while (!info.empty())
            {
                const auto eol = std::min(info.find('\n'), info.size());
                if (eol > 0)
                    why.append(why.empty() ? "" : "; ").append(info.substr(0, eol));
                info.remove_prefix(std::min(eol + 1, info.size()));
            }
            return "TLS certificate verification failed for " + host_port() + " (name " +
                   tls_name() + "): " + why;
        }
        if ((rc == MBEDTLS_ERR_NET_SEND_FAILED || rc == MBEDTLS_ERR_NET_RECV_FAILED ||
             rc == MBEDTLS_ERR_NET_CONN_RESET) &&
            io_errno != 0)
            return "TLS with " + host_port() + ": " + std::strerror(io_errno);
        return "TLS with " + host_port() + ": " + mbed_error(rc);
    }

    [[nodiscard]] bool timed_out(std::int64_t now_ms) const { return now_ms >= deadline; }

    Status time_out(const char* what)
    {
        return fail("timed out after " + std::to_string(cfg.connect_timeout_ms) + " ms " + what +
                    " " + peer_text());
    }

    // Steps resolution, connect and handshake as far as they go without blocking.
    Status advance(std::int64_t now_ms)
    {
        for (;;)
        {
            switch (phase)
            {
            case Phase::Resolving:
            {
                const int rc = gai_error(&lookup->cb);
                if (rc == EAI_INPROGRESS)
                {
                    if (timed_out(now_ms))
                    {
                        abandon(std::move(lookup));
                        return time_out("resolving");
                    }
                    return Status::InProgress;
                }
                if (rc != 0)
                {
                    lookup.reset();
                    return fail("cannot resolve " + cfg.host + ": " + gai_strerror(rc));
                }
                addrs = lookup->cb.ar_result;
                lookup->cb.ar_result = nullptr;
                lookup.reset();
                next = addrs;
                phase = Phase::Connecting;
                if (!connect_next(now_ms))
                    return Status::Failed;
                break;
            }
            case Phase::Connecting:
            {
                if (fd < 0 && !connect_next(now_ms))
                    return Status::Failed;
                pollfd p{fd, POLLOUT, 0};
                if (::poll(&p, 1, 0) <= 0)
                {
                    if (timed_out(now_ms))
                        return time_out("connecting to");
                    if (now_ms < attempt_deadline)
                        return Status::InProgress;
                    last_errno = ETIMEDOUT;
                    ::close(fd);
                    fd = -1;
                    if (!connect_next(now_ms))
                        return Status::Failed;
                    break;
                }
                int so_err = 0;
                socklen_t len = sizeof so_err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &len) != 0)
                    so_err = errno;
                if (so_err != 0)
                {
                    // This address failed; try the next one (e.g. ::1 refused, 127.0.0.1 next).
                    last_errno = so_err;
                    ::close(fd);
                    fd = -1;
                    if (!connect_next(now_ms))
                        return Status::Failed;
                    break;
                }
                if (!cfg.tls)
                {
                    phase = Phase::Open;
                    return Status::Open;
                }
                if (!setup_tls())
                    return Status::Failed;
                phase = Phase::Handshake;
                break;
            }
            case Phase::Handshake:
            {
                const int rc = mbedtls_ssl_handshake(&ssl);
                if (rc == 0)
                {
                    hs_wants_write = false;
                    phase = Phase::Open;
                    return Status::Open;
                }
                if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
                {
                    socket_drained = false;
                    hs_wants_write = rc == MBEDTLS_ERR_SSL_WANT_WRITE;
                    if (timed_out(now_ms))
                        return time_out("in the TLS handshake with");
                    return Status::InProgress;
                }
                return fail(tls_error(rc));
            }
            case Phase::Idle:
            case Phase::Open:
            case Phase::Failed:
                return status();
            }
        }
    }

    static int bio_send(void* ctx, const unsigned char* buf, std::size_t len)
    {
        auto* self = static_cast<Impl*>(ctx);
        len = std::min<std::size_t>(len, INT_MAX);
        for (;;)
        {
            const ssize_t n = ::send(self->fd, buf, len, MSG_NOSIGNAL);
            if (n >= 0)
                return static_cast<int>(n);
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return MBEDTLS_ERR_SSL_WANT_WRITE;
            self->io_errno = errno;
            return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                         : MBEDTLS_ERR_NET_SEND_FAILED;
        }
    }

    static int bio_recv(void* ctx, unsigned char* buf, std::size_t len)
    {
        auto* self = static_cast<Impl*>(ctx);
        len = std::min<std::size_t>(len, INT_MAX);
        if (self->rbuf_pos < self->rbuf_len)
        {
            const std::size_t n = std::min(len, self->rbuf_len - self->rbuf_pos);
            std::memcpy(buf, self->rbuf.get() + self->rbuf_pos, n);
            self->rbuf_pos += n;
            return static_cast<int>(n);
        }
        if (self->socket_drained)
            return MBEDTLS_ERR_SSL_WANT_READ; // cleared once "nothing more" reaches our caller
        // A request as large as the buffer goes straight to the caller.
        const bool direct = len >= kRecvBuffer;
        unsigned char* const dst = direct ? buf : self->rbuf.get();
        const std::size_t want = direct ? len : kRecvBuffer;
        for (;;)
        {
            const ssize_t n = ::recv(self->fd, dst, want, 0);
            if (n > 0)
            {
                self->socket_drained = static_cast<std::size_t>(n) < want;
                if (direct)
                    return static_cast<int>(n);
                self->rbuf_len = static_cast<std::size_t>(n);
                const std::size_t take = std::min(len, self->rbuf_len);
                std::memcpy(buf, dst, take);
                self->rbuf_pos = take;
                return static_cast<int>(take);
            }
            if (n == 0)
                return 0; // EOF, which mbedtls reports as CONN_EOF
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return MBEDTLS_ERR_SSL_WANT_READ;
            self->io_errno = errno;
            return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
        }
    }

    long read(std::span<std::uint8_t> out)
    {
        if (phase != Phase::Open)
        {
            if (phase != Phase::Failed)
                fail("read on a transport that is not open");
            return -1;
        }
        if (read_failed_later)
        {
            read_failed_later = false;
            fail(std::move(later_error));
            return -1;
        }
        read_wants_write = false;
        std::size_t got = 0;
        bool peer_closed = false;
        std::string problem;
        while (got < out.size())
        {
            if (cfg.tls)
            {
                const int rc = mbedtls_ssl_read(&ssl, out.data() + got, out.size() - got);
                if (rc > 0)
                {
                    got += static_cast<std::size_t>(rc);
                    continue;
                }
                if (rc == MBEDTLS_ERR_SSL_WANT_READ)
                {
                    // With bytes returned the caller reads again; the next read() that returns
                    // 0 lets the following one ask the socket.
                    if (got == 0)
                        socket_drained = false;
                    break;
                }
                if (rc == MBEDTLS_ERR_SSL_WANT_WRITE)
                {
                    socket_drained = false;
                    read_wants_write = true;
                    break;
                }
                peer_closed = rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
                              rc == MBEDTLS_ERR_SSL_CONN_EOF;
                if (!peer_closed)
                    problem = tls_error(rc);
                break;
            }
            const ssize_t n = ::recv(fd, out.data() + got, out.size() - got, 0);
            if (n > 0)
            {
                got += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            peer_closed = n == 0;
            if (!peer_closed)
                problem = "recv from " + peer_text() + ": " + std::strerror(errno);
            break;
        }
        if (peer_closed)
            problem = "connection to " + peer_text() + " closed by peer";
        if (!problem.empty())
        {
            if (got == 0)
            {
                fail(std::move(problem));
                return -1;
            }
            // Hand over what arrived first; the next read() reports the end.
            read_failed_later = true;
            later_error = std::move(problem);
        }
        return static_cast<long>(got);
    }

    long write(std::span<const std::uint8_t> data)
    {
        if (phase != Phase::Open)
        {
            if (phase != Phase::Failed)
                fail("write on a transport that is not open");
            return -1;
        }
        write_pending = false;
        std::size_t off = 0;
        if (cfg.tls)
        {
            if (pending_len > data.size())
            {
                fail("TLS write retried with fewer bytes than the pending record");
                return -1;
            }
            const int max_payload = mbedtls_ssl_get_max_out_record_payload(&ssl);
            const std::size_t chunk =
                max_payload > 0 ? static_cast<std::size_t>(max_payload) : kMaxRecord;
            while (off < data.size())
            {
                // A call that wanted to write must be repeated with the same length.
                const std::size_t len =
                    pending_len != 0 ? pending_len : std::min(data.size() - off, chunk);
                const int rc = mbedtls_ssl_write(&ssl, data.data() + off, len);
                if (rc > 0)
                {
                    pending_len = 0;
                    off += static_cast<std::size_t>(rc);
                    continue;
                }
                if (rc == MBEDTLS_ERR_SSL_WANT_WRITE || rc == MBEDTLS_ERR_SSL_WANT_READ)
                {
                    socket_drained = false;
                    pending_len = len;
                    write_pending = true;
                    break;
                }
                fail(tls_error(rc));
                return -1;
            }
            return static_cast<long>(off);
        }
        while (off < data.size())
        {
            const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (n >= 0)
            {
                off += static_cast<std::size_t>(n);
                continue;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
            {
                write_pending = true;
                break;
            }
            fail("send to " + peer_text() + ": " + std::strerror(errno));
            return -1;
        }
        return static_cast<long>(off);
    }

    [[nodiscard]] bool wants_write() const
    {
        switch (phase)
        {
        case Phase::Connecting:
            return fd >= 0;
        case Phase::Handshake:
            return hs_wants_write;
        case Phase::Open:
            return write_pending || read_wants_write;
        case Phase::Idle:
        case Phase::Resolving:
        case Phase::Failed:
            break;
        }
        return false;
    }

    void close()
    {
        if (lookup)
            abandon(std::move(lookup));
        if (ssl_active)
        {
            // Best effort: one non-blocking try at close_notify; the socket closes regardless.
            if (phase == Phase::Open)
                (void)mbedtls_ssl_close_notify(&ssl);
            mbedtls_ssl_free(&ssl);
            mbedtls_ssl_init(&ssl);
            ssl_active = false;
        }
        if (fd >= 0)
            ::close(fd);
        fd = -1;
        if (addrs != nullptr)
            freeaddrinfo(addrs);
        addrs = nullptr;
        next = nullptr;
        addr.clear();
        last_errno = 0;
        io_errno = 0;
        hs_wants_write = false;
        read_wants_write = false;
        write_pending = false;
        pending_len = 0;
        read_failed_later = false;
        later_error.clear();
        rbuf_pos = 0;
        rbuf_len = 0;
        socket_drained = false;
        phase = Phase::Idle;
    }

    [[nodiscard]] std::string peer_text() const
    {
        // A numeric host already is the address.
        return addr.empty() || addr == host_port() ? host_port() : host_port() + " (" + addr + ")";
    }
};

Transport::Transport() : impl_(std::make_unique<Impl>()) {}
Transport::~Transport() = default;

bool Transport::configure(const TransportConfig& cfg, std::string& err)
{
    return impl_->configure(cfg, err);
}

Transport::Status Transport::start(std::int64_t now_ms)
{
    return impl_->start(now_ms);
}

Transport::Status Transport::progress(std::int64_t now_ms)
{
    return impl_->advance(now_ms);
}

Transport::Status Transport::status() const
{
    return impl_->status();
}

int Transport::fd() const
{
    return impl_->fd;
}

bool Transport::wants_write() const
{
    return impl_->wants_write();
}

long Transport::read(std::span<std::uint8_t> out)
{
    return impl_->read(out);
}

long Transport::write(std::span<const std::uint8_t> data)
{
    return impl_->write(data);
}

void Transport::close()
{
    impl_->close();
}

const std::string& Transport::error() const
{
    return impl_->err;
}

std::string Transport::peer() const
{
    return impl_->peer_text();
}

std::string Transport::security() const
{
    const Impl& m = *impl_;
    if (!m.cfg.tls)
        return "plain TCP";
    if (m.phase != Impl::Phase::Open)
        return "TLS";
    return std::string(mbedtls_ssl_get_version(&m.ssl)) + " " + mbedtls_ssl_get_ciphersuite(&m.ssl);
}

} // namespace ga::port
