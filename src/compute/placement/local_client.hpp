// The placement client that calls the service in the same process (all-in-one, tests, benchmarks).
#pragma once

#include <memory>

#include "compute/placement/client.hpp"

namespace nubo::placement {

class PlacementService;

class LocalPlacementClient : public PlacementClient {
 public:
  explicit LocalPlacementClient(std::shared_ptr<PlacementService> service);
  void ensure_provider(const ProviderInventory& p) override;
  std::vector<Candidate> allocation_candidates(const CandidateRequest& r) override;
  bool claim(
      const Consumer& c,
      const std::map<std::string, std::map<std::string, std::int64_t>>& allocations) override;
  std::map<std::string, std::map<std::string, std::int64_t>> allocations(
      const std::string& consumer_uuid) override;
  void move_allocations(const std::string& from, const std::string& to,
                        const Consumer& to_consumer) override;
  void release(const std::string& consumer_uuid) override;
  void set_provider_aggregates(const std::string& provider_uuid,
                               const std::vector<std::string>& aggregate_uuids) override;

 private:
  std::shared_ptr<PlacementService> service_;
};

}  // namespace nubo::placement
