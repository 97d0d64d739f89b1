# The OpenAPI document, generated from the routers and the API's types (skyhook-api-types).
#   make openapi        write functions/api/src/openapi.json
#   make openapi-check  fail when that file is stale, and validate it as OpenAPI 3.1
#   make api-fuzz       Schemathesis against skyhook local, longer and with a fresh seed
#                       (API_FUZZ_EXAMPLES per operation, at most API_FUZZ_SECONDS)

API_FUZZ_EXAMPLES ?= 200
API_FUZZ_SECONDS ?= 1200

.PHONY: openapi openapi-check api-fuzz

openapi:
	$(CARGO) run -q -p skyhook-tests --bin skyhook-openapi

openapi-check:
	./scripts/ensure-venv.sh
	$(CARGO) run -q -p skyhook-tests --bin skyhook-openapi -- --check
	.venv/bin/openapi-spec-validator functions/api/src/openapi.json

api-fuzz:
	SKYHOOK_SCHEMATHESIS_EXAMPLES=$(API_FUZZ_EXAMPLES) \
	SKYHOOK_SCHEMATHESIS_SECONDS=$(API_FUZZ_SECONDS) \
	SKYHOOK_SCHEMATHESIS_SEED=$$RANDOM$$RANDOM \
	./scripts/with-emulator.sh cargo nextest run -p skyhook-cli --test schemathesis --no-capture
