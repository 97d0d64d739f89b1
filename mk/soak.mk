# The chaos run: skyhook local against failing receivers, killed with SIGKILL twice, then
# drained; it asserts nothing was lost and prints the table (cli/tests/soak.rs).
#   make soak                       500 events x 10 subscribers = 5,000 deliveries, ≤ 10 min
#   make soak SOAK_EVENTS=2000 SOAK_MINUTES=30
# make test runs the same test at 40 events.
SOAK_EVENTS ?= 500
SOAK_SUBSCRIBERS ?= 10
SOAK_MINUTES ?= 10

.PHONY: soak
soak:
	SKYHOOK_SOAK_EVENTS=$(SOAK_EVENTS) SKYHOOK_SOAK_SUBSCRIBERS=$(SOAK_SUBSCRIBERS) \
	SKYHOOK_SOAK_MINUTES=$(SOAK_MINUTES) \
	./scripts/with-emulator.sh $(CARGO) nextest run -p skyhook-cli --test soak --no-capture
