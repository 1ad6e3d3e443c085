// Swift's bulk middleware: many deletes in one request (?bulk-delete) and tar archives unpacked
// into objects (?extract-archive=tar|tar.gz|tar.bz2), with their result bodies in text, JSON or
// XML; also the response shapes SLO's deletes and uploads share with them.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/json.hpp"
#include "object/proxy/core.hpp"

namespace nubo::object::proxy::bulk {

// The Accept header's best match among text/plain, application/json, application/xml and
// text/xml (text/plain when absent); empty when malformed or nothing fits.
std::string response_format(const http::Request& r);

// Python's json.dumps of a value (", " and ": " separators, non-ASCII as \uXXXX), so that
// bodies and stored manifests read as Swift writes them.
std::string py_json(const json::value& v);

// Swift's get_heartbeat_response_body: fields sorted in text and XML, in order in JSON, then
// the errors as (quoted name, status) pairs.
std::string result_body(const std::string& format, const json::object& fields,
                        const std::vector<std::pair<std::string, std::string>>& errors,
                        const std::string& root);

// A name to delete, or the error found for it before (SLO's sub-manifests).
struct Item {
  std::string name;  // "/container/object" or "/container"
  std::optional<std::pair<int, std::string>> error;
};
// Deletes the objects, then the containers, as the caller; Swift's 200 with the outcome in
// the body.
http::Response delete_items(Request& q, const std::vector<Item>& items, const std::string& format);

// POST or DELETE ?bulk-delete: newline-separated, URL-quoted names in the body.
http::Response bulk_delete(Request& q);
// PUT ?extract-archive=<format> on an account, container or prefix: the body streams through
// the tar reader into object PUTs.
std::unique_ptr<http::BodySink> extract_archive(Request& q);

}  // namespace nubo::object::proxy::bulk
