// Typed API errors raised by handlers and services, rendered by each service's dialect.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>
#include <utility>

namespace nubo {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string type = {})
      : std::runtime_error(message), status_(status), type_(std::move(type)) {}
  int status() const { return status_; }
  // A machine-readable error type (Neutron's "type", Nova's fault key override).
  const std::string& type() const { return type_; }
  // Extra response headers (WWW-Authenticate, Retry-After...).
  std::vector<std::pair<std::string, std::string>> headers;

 private:
  int status_;
  std::string type_;
};

inline ApiError BadRequest(std::string m) { return ApiError(400, std::move(m), "BadRequest"); }
inline ApiError Unauthorized(std::string m = "The request you have made requires authentication.") {
  return ApiError(401, std::move(m), "Unauthorized");
}
inline ApiError Forbidden(std::string m = "You are not authorized to perform the requested action.") {
  return ApiError(403, std::move(m), "Forbidden");
}
inline ApiError NotFound(std::string m) { return ApiError(404, std::move(m), "NotFound"); }
inline ApiError MethodNotAllowed(std::string m = "The method is not allowed for the requested URL.") {
  return ApiError(405, std::move(m), "MethodNotAllowed");
}
inline ApiError Conflict(std::string m) { return ApiError(409, std::move(m), "Conflict"); }
inline ApiError PreconditionFailed(std::string m) { return ApiError(412, std::move(m), "PreconditionFailed"); }
inline ApiError TooLarge(std::string m = "Request is too large.") {
  return ApiError(413, std::move(m), "RequestEntityTooLarge");
}
inline ApiError UnsupportedMediaType(std::string m) {
  return ApiError(415, std::move(m), "UnsupportedMediaType");
}
inline ApiError NotImplemented(std::string m = "The action you have requested has not been implemented.") {
  return ApiError(501, std::move(m), "NotImplemented");
}

const char* status_reason(int status);

}  // namespace nubo
