// Swift's formpost middleware: an HTML form (multipart/form-data POST to a container or object
// prefix) signed with a Temp-URL-Key uploads its files as objects without a token.
#pragma once

#include <memory>

#include "object/proxy/core.hpp"

namespace nubo::object::proxy::formpost {

// A POST whose Content-Type is multipart/form-data with a boundary.
bool applies(const http::Request& r);
// The form read as it arrives: its fields, then each file streamed into its object.
std::unique_ptr<http::BodySink> upload(Request& q);

}  // namespace nubo::object::proxy::formpost
