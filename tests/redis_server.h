// A throwaway redis-server on a free loopback port, for tests and the bench.
// It keeps its data in a fresh directory under /tmp (append-only file synced
// on every write before the write is answered, so every acknowledged write
// survives stop(), kill() and restart()); the destructor kills and reaps it
// and removes the directory, and the kernel kills it if the test dies first
// (PR_SET_PDEATHSIG).
//
//   std::string error;
//   std::unique_ptr<RedisServer> redis = RedisServer::start(&error);
//   ASSERT_NE(redis, nullptr) << error;
//   open_redis_store({.kind = "redis", .url = redis->url()});
//   redis->stop();               // down, port kept
//   redis->kill();               // SIGKILL, as a crash: down, port and data kept
//   redis->restart(&error);      // up again on the same port with the same data
//   redis->pause();              // SIGSTOP: connections hang until resume()
#pragma once

#include <hiredis/hiredis.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>

namespace sluice::testing {

class RedisServer {
 public:
  enum class Persistence {
    kAppendOnly,  // appendonly yes, appendfsync always: fsynced before it is answered
    kNone,        // memory only (the bench: persistence would be measured too)
  };

  // nullptr on failure (no redis-server in PATH, no free port), `error` set.
  static std::unique_ptr<RedisServer> start(std::string* error,
                                            Persistence persistence = Persistence::kAppendOnly);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  // "redis://127.0.0.1:<port>/<db>".
  std::string url(int db = 0) const;
  // A new connection (the caller frees it with redisFree), nullptr on failure.
  redisContext* connect(std::string* error) const;

  // SIGTERM, then reaped; the port and the data directory are kept.
  void stop();
  // SIGKILL, then reaped: the server gets no chance to flush or save
  // anything; what it had fsynced stays. Port and data directory are kept.
  void kill();
  // Starts the server again on the same port with the same data directory
  // and waits until it answers PING; false with `error` set if it does not.
  bool restart(std::string* error);
  // SIGSTOP / SIGCONT: a paused server accepts connections but answers nothing.
  void pause();
  void resume();

 private:
  RedisServer(int port, std::string dir, Persistence persistence)
      : port_(port), dir_(std::move(dir)), persistence_(persistence) {}
  bool launch(std::string* error);

  pid_t pid_ = -1;
  int port_;
  std::string dir_;
  Persistence persistence_;
  bool paused_ = false;
};

}  // namespace sluice::testing
