#include "metrics_server.h"

#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace sluice {

namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

struct HostPort {
  std::string host;
  int port = 0;
};

// "127.0.0.1:9464", "localhost:9464", "[::1]:9464". The policy reader has
// checked that there is a host and a port in 1..65535.
HostPort split(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  HostPort at;
  at.host = listen.substr(0, colon);
  if (at.host.size() >= 2 && at.host.front() == '[' && at.host.back() == ']') {
    at.host = at.host.substr(1, at.host.size() - 2);
  }
  at.port = std::atoi(listen.c_str() + colon + 1);
  return at;
}

// Only SO_REUSEADDR (a restart may bind while old connections linger), not
// cpp-httplib's default SO_REUSEPORT: a second sluiced on the same port must
// fail, not share it.
void socket_options(int fd) {
  const int yes = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

// Why `listen` cannot be listened on, found by trying it the way the server
// does (cpp-httplib only says that it failed).
std::string bind_failure(const std::string& listen, const HostPort& at) {
  const std::string what = "metrics.listen " + listen + ": ";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(at.port);
  if (const int gai = ::getaddrinfo(at.host.c_str(), port.c_str(), &hints, &found); gai != 0) {
    return what + "cannot resolve '" + at.host + "' (" + ::gai_strerror(gai) +
           "); write an IPv4 address such as 127.0.0.1, or a name this host resolves";
  }
  int error = 0;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) {
      if (error == 0) error = errno;
      continue;
    }
    socket_options(fd);
    const bool ok = ::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1) == 0;
    if (!ok && error == 0) error = errno;
    ::close(fd);
  }
  ::freeaddrinfo(found);
  switch (error) {
    case EADDRINUSE:
      return what + "address in use; pick another port or stop what holds it";
    case EACCES:
      return what +
             "permission denied; pick a port above 1023, or give sluiced CAP_NET_BIND_SERVICE";
    case EADDRNOTAVAIL:
      return what + "not an address of this host; listen on 127.0.0.1 or one of this host's";
    case 0:
      return what + "cannot listen there; pick another address or port";
    default:
      return what + "cannot listen (" + std::strerror(error) + "); pick another address or port";
  }
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::bind(const std::string& listen,
                                                           Render render) {
  auto server = std::make_unique<httplib::Server>();
  // A scrape every few seconds: two threads are plenty, and a slow client
  // holds one of them, never the sidecar.
  server->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server->set_socket_options(socket_options);
  server->set_keep_alive_timeout(1);  // bounds how long stop() waits for an idle connection
  server->set_read_timeout(2, 0);
  server->set_write_timeout(2, 0);
  server->Get("/metrics",
              [render = std::move(render)](const httplib::Request&, httplib::Response& res) {
                res.set_content(render(), kContentType);
              });
  server->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404) {
      res.set_content("not found; metrics are served at /metrics\n", "text/plain; charset=utf-8");
    }
  });
  server->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
        res.status = 500;
        res.set_content("metrics could not be rendered\n", "text/plain; charset=utf-8");
      });
  const HostPort at = split(listen);
  if (!server->bind_to_port(at.host, at.port)) {
    return Status(ErrorCode::kIo, bind_failure(listen, at));
  }
  return std::unique_ptr<MetricsServer>(new MetricsServer(listen, std::move(server)));
}

MetricsServer::MetricsServer(std::string listen, std::unique_ptr<httplib::Server> server)
    : listen_(std::move(listen)), server_(std::move(server)) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::start() {
  if (thread_.joinable() || stopped_) return;
  auto done = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread([server = server_.get(), done] {
    server->listen_after_bind();
    done->store(true, std::memory_order_release);
  });
  // cpp-httplib's stop() does nothing until the accept loop runs: wait for it.
  while (!server_->is_running() && !done->load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void MetricsServer::stop() {
  if (stopped_) return;
  start();  // never started: run the loop so that stopping it closes the bound socket
  stopped_ = true;
  server_->stop();
  thread_.join();
}

}  // namespace sluice
