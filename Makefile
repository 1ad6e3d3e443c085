# Nubo: `make run` starts the all-in-one cloud; `make test` runs every test.
BUILD ?= build
NUBO := $(BUILD)/src/main/nubo
JOBS ?= 2

.PHONY: deps build run test test-main test-side test-network unit conformance conformance-full bench fuzz clean

deps:
	scripts/install-deps

build: deps
	@test -f $(BUILD)/build.ninja || cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	ninja -C $(BUILD) -j $(JOBS)

# The all-in-one on this machine's QEMU, with the test guest image loaded as nubo-guest.
run: build
	scripts/build-guest-image $(BUILD)/guest
	$(NUBO) all-in-one --guest-image $(BUILD)/guest/nubo-guest.qcow2

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# Every test: unit and API tests (SQLite, then PostgreSQL), durability, end-to-end journeys and
# the Tempest must-pass list, in three chains side by side: test-main (the VMs and the
# CPU-heavy suites), test-side (the CLI journeys and the Linux dataplane) and test-network (Tempest's network tests,
# which spend their minutes in the client's sleeps). Their ports differ.
test: build
	$(MAKE) --no-print-directory -j 3 test-main test-side test-network

test-main: unit
	tests/api/run-postgresql $(BUILD)
	tests/e2e/kill9-durability $(NUBO)
	tests/e2e/openstack-cli $(NUBO)
	tests/e2e/openstack-compute $(NUBO)
	tests/e2e/compute-kill9 $(NUBO)
	tests/e2e/qemu-vm $(NUBO)
	tests/e2e/network-vms $(NUBO)
	tests/e2e/qemu-failures $(NUBO)
	tests/e2e/image-failures $(NUBO)
	NUBO_CONFORMANCE_PART=main tests/conformance/run $(NUBO) --must-pass

test-side: build
	tests/e2e/openstack-network $(NUBO)
	tests/e2e/network-dataplane $(NUBO)
	tests/e2e/openstack-placement $(NUBO)
	tests/e2e/openstack-image $(NUBO)
	tests/e2e/openstack-object $(NUBO)
	tests/e2e/object-durability $(NUBO)
	tests/e2e/split-services $(NUBO)

test-network: build
	@echo "network conformance: running beside the other tests (log: $(BUILD)/network-conformance.log)"
	@NUBO_CONFORMANCE_PART=network NUBO_CONFORMANCE_PORT=16100 tests/conformance/run $(NUBO) --must-pass \
	  > $(BUILD)/network-conformance.log 2>&1 || { tail -40 $(BUILD)/network-conformance.log | cut -c1-2000; exit 1; }
	@tail -1 $(BUILD)/network-conformance.log

# The full identity Tempest run (reports counts; the must-pass list is the CI bar).
conformance: build
	tests/conformance/run $(NUBO)

bench: build
	bench/compute/run $(BUILD)
	bench/identity/run $(NUBO)
	bench/image/run $(NUBO)
	POSTGRESQL=1 bench/placement/run $(BUILD)
	bench/network/run $(BUILD)
	bench/network/dataplane $(BUILD)

fuzz:
	scripts/install-deps --fuzz
	cmake -S . -B $(BUILD)-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DNUBO_FUZZ=ON -DNUBO_WERROR=OFF -DBUILD_TESTING=OFF
	ninja -C $(BUILD)-fuzz fuzz_http_request fuzz_auth_body
	mkdir -p $(BUILD)-fuzz/corpus/http $(BUILD)-fuzz/corpus/auth
	$(BUILD)-fuzz/tests/fuzz/fuzz_http_request -max_total_time=600 -timeout=10 $(BUILD)-fuzz/corpus/http tests/fuzz/seeds/http
	$(BUILD)-fuzz/tests/fuzz/fuzz_auth_body -max_total_time=600 -timeout=10 $(BUILD)-fuzz/corpus/auth tests/fuzz/seeds/auth

clean:
	rm -rf $(BUILD)
