// A throwaway redis-server for the peer comparison: started on a free
// loopback port with no persistence, killed and reaped by the destructor
// (and by the kernel if the bench dies first: PR_SET_PDEATHSIG).
//
//   std::string error;
//   std::unique_ptr<RedisServer> redis = RedisServer::start(&error);
//   redisContext* c = redis->connect(&error);
#pragma once

#include <hiredis/hiredis.h>
#include <sys/types.h>

#include <memory>
#include <string>

namespace sluice::bench {

class RedisServer {
 public:
  // nullptr on failure (no redis-server in PATH, no free port), `error` set.
  static std::unique_ptr<RedisServer> start(std::string* error);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  // A new connection (the caller frees it with redisFree), nullptr on failure.
  redisContext* connect(std::string* error) const;

 private:
  RedisServer(pid_t pid, int port) : pid_(pid), port_(port) {}
  pid_t pid_;
  int port_;
};

}  // namespace sluice::bench
