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
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>
#include <vector>

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;

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

pid_t spawn(int port, const std::string& dir, RedisServer::Persistence persistence) {
  const bool append_only = persistence == RedisServer::Persistence::kAppendOnly;
  // clang-format off
  const std::vector<std::string> args = {
      "redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
      "--save", "", "--appendonly", append_only ? "yes" : "no", "--appendfsync", "always",
      "--dir", dir, "--logfile", "", "--daemonize", "no"};
  // clang-format on
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const int null = ::open("/dev/null", O_RDWR);
  ::dup2(null, STDIN_FILENO);
  ::dup2(null, STDOUT_FILENO);
  ::dup2(null, STDERR_FILENO);
  ::execvp("redis-server", argv.data());
  ::_exit(127);
}

void terminate(pid_t pid) {
  ::kill(pid, SIGTERM);
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < deadline) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace

std::unique_ptr<RedisServer> RedisServer::start(std::string* error, Persistence persistence) {
  std::string pattern = "/tmp/sluice-redis-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    *error = std::string("cannot create a data directory under /tmp: ") + std::strerror(errno);
    return nullptr;
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int port = free_port();
    if (port <= 0) {
      *error = std::string("cannot find a free loopback port: ") + std::strerror(errno);
      break;
    }
    std::unique_ptr<RedisServer> server(new RedisServer(port, pattern, persistence));
    if (server->launch(error)) return server;
    server->dir_.clear();  // kept for the next attempt
  }
  std::error_code ignored;
  std::filesystem::remove_all(pattern, ignored);
  return nullptr;
}

bool RedisServer::launch(std::string* error) {
  pid_ = spawn(port_, dir_, persistence_);
  if (pid_ < 0) {
    *error = std::string("cannot fork redis-server: ") + std::strerror(errno);
    return false;
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: port taken or no binary
      pid_ = -1;
      *error = WIFEXITED(status) && WEXITSTATUS(status) == 127
                   ? "redis-server not found; run tools/bootstrap"
                   : "redis-server exited at start (port " + std::to_string(port_) + " taken?)";
      return false;
    }
    std::string ignored;
    if (redisContext* c = connect(&ignored)) {
      redisFree(c);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  *error = "redis-server did not answer PING within 5 s";
  terminate(pid_);
  pid_ = -1;
  return false;
}

RedisServer::~RedisServer() {
  stop();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::string RedisServer::url(int db) const {
  return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
}

redisContext* RedisServer::connect(std::string* error) const {
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeval{1, 0});
  if (c == nullptr || c->err != 0) {
    *error = c == nullptr ? "cannot allocate a redis context" : c->errstr;
    if (c != nullptr) redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, timeval{1, 0});
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

void RedisServer::stop() {
  if (pid_ <= 0) return;
  resume();  // a stopped process would not act on SIGTERM
  terminate(pid_);
  pid_ = -1;
}

void RedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);  // a stopped process dies of it too
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  paused_ = false;
}

bool RedisServer::restart(std::string* error) {
  stop();
  return launch(error);
}

void RedisServer::pause() {
  if (pid_ <= 0 || paused_ || ::kill(pid_, SIGSTOP) != 0) return;
  int status = 0;
  ::waitpid(pid_, &status, WUNTRACED);  // returns once it has stopped
  paused_ = true;
}

void RedisServer::resume() {
  if (pid_ > 0 && paused_ && ::kill(pid_, SIGCONT) == 0) paused_ = false;
}

}  // namespace sluice::testing
