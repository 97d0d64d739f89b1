# Skyhook — webhook delivery on AWS serverless.
#   make run    the whole system on this machine (moto on 127.0.0.1:4566, API on 127.0.0.1:3000)
#   make test   format check, clippy, and every test against an AWS API emulator, then the
#               console's browser test when Chromium is installed (make test-browser alone)
#   make test-stress  make test 5 times in a row with both cores kept busy
#   make soak   the chaos run at 5,000 deliveries (mk/soak.mk); make fuzz  property tests
#               for FUZZ_SECONDS (mk/fuzz.mk)
#   make demo   start everything, deliver one verified webhook, stop everything
#   make demo-inbound  the same with a GitHub-style webhook arriving at an inbound source,
#               verified, then fanned out transformed to a listener that verifies it
#   make build  release bootstraps of the four Lambda functions (mk/deploy.mk; also deploy,
#               lint-infra, smoke)
#   make build-debug  debug build of the workspace
#   make openapi  regenerate the OpenAPI document (mk/openapi.mk; also openapi-check,
#               api-fuzz: Schemathesis against skyhook local)
#   make bench  speed figures (signing, a jq transform, fan-out, batch delivery, secret cache) on this machine,
#               AWS cost per delivery, skyhook local's speed, and a noisy tenant's effect on another

SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run demo demo-inbound test test-browser test-stress bench lint fmt build-debug emulator-shell clean-local

run:
	./scripts/run-local.sh

demo:
	./scripts/demo.sh

demo-inbound:
	./scripts/demo-inbound.sh

test: lint lint-infra openapi-check
	./scripts/with-emulator.sh ./scripts/run-tests.sh
	@if { [ -n "$${CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; } && command -v npm >/dev/null 2>&1; then \
	  ./scripts/browser-test.sh; \
	else \
	  echo "make test: no Chromium (or no Node/npm) here, so the console's browser test did not run (apt-get install chromium nodejs npm; .ci/run installs them)"; \
	fi

# The console in a real browser (Debian's Chromium) against skyhook local, with screenshots.
test-browser:
	./scripts/browser-test.sh

# make test 5 times in a row (STRESS_RUNS) with a CPU hog on every core.
test-stress:
	./scripts/stress.sh

# A release build of the bench binary (bench/), and the jq worker its sandboxes start beside
# it (tests/), run against its own emulator.
bench:
	$(CARGO) build --release -q -p skyhook-bench -p skyhook-tests --bin skyhook-bench --bin skyhook-jq-worker
	./scripts/with-emulator.sh $(CARGO) run --release -q -p skyhook-bench --bin skyhook-bench

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	./scripts/check-release-features.sh

fmt:
	$(CARGO) fmt --all

build-debug:
	$(CARGO) build --workspace

# A shell with moto running and AWS_ENDPOINT_URL set, for poking at the emulator by hand.
emulator-shell:
	./scripts/with-emulator.sh $${SHELL:-bash}

clean-local:
	rm -rf .venv .skyhook

# Further targets (build, deploy, smoke, …) live beside this file in mk/.
-include mk/*.mk
