// Test helpers for whatever posts over HTTP or logs from threads of its
// own: a receiver on a free loopback port that records every POST, and a
// log sink that collects lines from any thread.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::testing {

struct Received {
  std::string path;
  std::string content_type;
  std::string body;
};

// An HTTP server on a free loopback port that records every POST and
// answers with the status `answer` gives for the request's index (0-based).
// With hold(), handlers wait until release() (or 10 s) before answering.
class Receiver {
 public:
  explicit Receiver(std::function<int(int)> answer = [](int) { return 200; })
      : answer_(std::move(answer)) {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      int index = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        index = static_cast<int>(received_.size());
        received_.push_back({req.path, req.get_header_value("Content-Type"), req.body});
        released_.wait_for(lock, std::chrono::seconds(10), [this] { return !held_; });
      }
      res.status = answer_(index);
      res.set_content("ok", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    EXPECT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Receiver() {
    release();
    server_.stop();
    thread_.join();
  }

  std::string url(const std::string& path = "/alerts") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Received> received() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  std::size_t count() const { return received().size(); }
  void hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = false;
    }
    released_.notify_all();
  }

 private:
  std::function<int(int)> answer_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable released_;
  bool held_ = false;
  std::vector<Received> received_;
};

// Log lines, collected from whichever thread writes them.
struct LogLines {
  std::shared_ptr<std::mutex> mu = std::make_shared<std::mutex>();
  std::shared_ptr<std::vector<std::string>> lines = std::make_shared<std::vector<std::string>>();

  std::function<void(const std::string&)> fn() const {
    return [mu = mu, lines = lines](const std::string& line) {
      std::lock_guard<std::mutex> lock(*mu);
      lines->push_back(line);
    };
  }
  std::vector<std::string> get() const {
    std::lock_guard<std::mutex> lock(*mu);
    return *lines;
  }
};

}  // namespace sluice::testing
