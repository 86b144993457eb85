#include "redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "latency.h"

namespace sluice::bench {
namespace {

// A loopback port the kernel just handed out (bound to port 0, then closed).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

pid_t spawn(int port) {
  const std::string p = std::to_string(port);
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const int null = ::open("/dev/null", O_RDWR);
  ::dup2(null, STDIN_FILENO);
  ::dup2(null, STDOUT_FILENO);
  ::dup2(null, STDERR_FILENO);
  ::execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", "/tmp", "--logfile", "", "--daemonize", "no",
           static_cast<char*>(nullptr));
  ::_exit(127);
}

void stop(pid_t pid) {
  ::kill(pid, SIGTERM);
  const std::uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + 3'000'000'000ull;
  while (clock_ns(CLOCK_MONOTONIC) < deadline) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    ::usleep(2000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace

std::unique_ptr<RedisServer> RedisServer::start(std::string* error) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int port = free_port();
    if (port <= 0) {
      *error = std::string("cannot find a free loopback port: ") + std::strerror(errno);
      return nullptr;
    }
    const pid_t pid = spawn(port);
    if (pid < 0) {
      *error = std::string("cannot fork redis-server: ") + std::strerror(errno);
      return nullptr;
    }
    std::unique_ptr<RedisServer> server(new RedisServer(pid, port));
    const std::uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + 5'000'000'000ull;
    while (clock_ns(CLOCK_MONOTONIC) < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {  // exited: port taken or no binary
        server->pid_ = -1;
        *error = WIFEXITED(status) && WEXITSTATUS(status) == 127
                     ? "redis-server not found; run tools/bootstrap"
                     : "redis-server exited at start (port " + std::to_string(port) + " taken?)";
        break;
      }
      std::string ignored;
      if (redisContext* c = server->connect(&ignored)) {
        redisFree(c);
        return server;
      }
      ::usleep(10'000);
    }
    if (server->pid_ > 0) *error = "redis-server did not answer PING within 5 s";
  }
  return nullptr;
}

RedisServer::~RedisServer() {
  if (pid_ > 0) stop(pid_);
}

redisContext* RedisServer::connect(std::string* error) const {
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeval{1, 0});
  if (c == nullptr || c->err != 0) {
    *error = c == nullptr ? "cannot allocate a redis context" : c->errstr;
    if (c != nullptr) redisFree(c);
    return nullptr;
  }
  auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
  const bool ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
  if (reply != nullptr) freeReplyObject(reply);
  if (!ok) {
    *error = "redis-server did not answer PING";
    redisFree(c);
    return nullptr;
  }
  return c;
}

}  // namespace sluice::bench
