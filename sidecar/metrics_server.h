// sluiced's Prometheus endpoint: GET /metrics on metrics.listen answers with
// what `render` returns, as text exposition format 0.0.4; any other request
// is a 404. Built on cpp-httplib, serving on threads of its own: a scrape
// never runs on the sidecar's tick or its audit drain, and `render` must be
// safe to call from any thread.
//
//   Result<std::unique_ptr<MetricsServer>> s = MetricsServer::bind("127.0.0.1:9464", render);
//   if (!s.ok()) return s.status();  // one line: the address, what is wrong, the fix
//   (*s)->start();                   // answering from now on
//   (*s)->stop();                    // no request in progress once it returns
//
// Bound connections wait in the listen backlog until start().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "sluice/status.h"

namespace httplib {
class Server;
}

namespace sluice {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;

  // Binds `listen` ("host:port"; an IPv4 address or a name this host
  // resolves). Errors are one line naming the address and the fix.
  static Result<std::unique_ptr<MetricsServer>> bind(const std::string& listen, Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  void start();
  // Closes the listening socket and waits for requests in progress (a client
  // that sends nothing is given up after a second). Idempotent.
  void stop();

  // Where metrics are served: "http://127.0.0.1:9464/metrics".
  std::string url() const { return "http://" + listen_ + "/metrics"; }

 private:
  MetricsServer(std::string listen, std::unique_ptr<httplib::Server> server);

  std::string listen_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace sluice
