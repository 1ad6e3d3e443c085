// Static large objects, as Swift's slo middleware keeps them: a manifest PUT with
// ?multipart-manifest=put is checked segment by segment and stored as a JSON list; GET and HEAD
// assemble the segments; ?multipart-manifest=get reads the list, ?multipart-manifest=delete
// deletes the segments and then the manifest.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/json.hpp"
#include "object/proxy/core.hpp"

namespace nubo::object::proxy::slo {

bool is_slo(const http::Headers& h);

std::unique_ptr<http::BodySink> put_manifest(Request& q);
// GET or HEAD of a manifest's object (source: the manifest from a storage server).
http::Response assembled(Request& q, Source source, http::Response out);
// ?multipart-manifest=get (and &format=raw, the list as it was uploaded).
http::Response manifest(Request& q, Source source, http::Response out);
// DELETE ?multipart-manifest=delete.
http::Response delete_manifest(Request& q);

// A manifest's stored Content-Type carries the object's size and ETag for HEADs and listings
// (swift_bytes, as Swift; swift_slo_etag where Swift overrides the container's etag):
// "type;swift_bytes=N;swift_slo_etag=E" → "type".
std::string clean_content_type(std::string_view type);
// A container listing row of a manifest: bytes = the whole's size, slo_etag as Swift lists it.
void fix_listing_row(json::object& row);

}  // namespace nubo::object::proxy::slo
