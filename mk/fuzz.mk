# Property-based fuzzing; included by the main Makefile.
#   make fuzz   every fuzz_ test (the parsers of outside input, <crate>/tests/fuzz.rs) round
#               after round with a fresh seed and many cases, for FUZZ_SECONDS (default 300);
#               FUZZ_CASES, FUZZ_FIRST_CASES, FUZZ_MAX_ROUNDS and FUZZ_FILTER as scripts/fuzz.sh
#               describes.
#               `make test` runs the same tests once, with few cases.

.PHONY: fuzz

fuzz:
	FUZZ_SECONDS="$(FUZZ_SECONDS)" FUZZ_CASES="$(FUZZ_CASES)" FUZZ_FIRST_CASES="$(FUZZ_FIRST_CASES)" \
	  FUZZ_MAX_ROUNDS="$(FUZZ_MAX_ROUNDS)" FUZZ_FILTER="$(FUZZ_FILTER)" ./scripts/fuzz.sh
