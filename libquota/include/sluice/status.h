// Status and Result<T>: errors as values, never exceptions through Sluice.
//
//   sluice::Result<Policy> p = sluice::load_policy_file("policy.yaml");
//   if (!p.ok()) { std::fprintf(stderr, "%s\n", p.status().message().c_str()); return 2; }
//   use(p.value());
//
// A message is one line: what is wrong and how to fix it.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace sluice {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,   // bad input from the caller or a bad policy file
  kNotFound,          // no such segment, reservation or file
  kPermissionDenied,  // the OS refused access
  kIncompatible,      // segment of another layout version or size
  kNotReady,          // segment exists but the sidecar has not finished creating it
  kAlreadyRunning,    // another sidecar owns the segment
  kIo,                // a system call failed
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sluice
