// libFuzzer target: raw bytes through Beast's request parser (with Nubo's limits), then Nubo's
// target parsing and the identity pipeline's routing, as the server does for every request.
#include "common/http/message.hpp"
#include "common/service.hpp"

#include <boost/beast/http.hpp>

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>

namespace bhttp = boost::beast::http;

static nubo::Pipeline& pipeline() {
  static nubo::Pipeline p([] {
    nubo::ServiceSpec spec;
    spec.name = "fuzz";
    spec.routes.push_back(nubo::Route{"GET", "/v3/users/{user_id}", [](nubo::Context& c) {
                                        return nubo::json_response(200, nubo::json::object{{"id", c.param("user_id")}});
                                      },
                                      "", false});
    spec.routes.push_back(nubo::Route{"POST", "/v3/things", [](nubo::Context& c) {
                                        return nubo::json_response(201, c.body());
                                      },
                                      "", false});
    return spec;
  }());
  return p;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // one access line per input would dominate the run
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(112 * 1024);
  boost::system::error_code ec;
  boost::asio::const_buffer buf(data, size);
  parser.put(buf, ec);
  if (ec == bhttp::error::need_more) parser.put_eof(ec);
  if (ec || !parser.is_done()) return 0;
  auto& msg = parser.get();
  nubo::http::Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  nubo::http::parse_target(req);
  for (auto& f : msg) req.headers.add(std::string(f.name_string()), std::string(f.value()));
  req.body = msg.body();
  auto r = pipeline().handle(req);
  if (r.status < 100 || r.status > 599) __builtin_trap();
  return 0;
}
