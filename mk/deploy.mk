# Building, linting, deploying and smoke-testing Skyhook's Lambda functions; included by the
# main Makefile. The tools come from the project's .venv (scripts/ensure-deploy-tools.sh).
#   make build        release bootstraps for Lambda in target/lambda/<name>/bootstrap
#   make deploy       sam build, then sam deploy --guided (infra/template.yaml)
#   make lint-infra   cfn-lint, sam validate and sam validate --lint on the template
#   make smoke        the four binaries through the Lambda runtime (cargo lambda watch/invoke)

VENV_BIN := $(CURDIR)/.venv/bin
# arm64 (Graviton: cheaper per ms) is the template's default; `make build ARCH=x86_64`
# builds for the other choice, which must then also be the stack's Architecture parameter.
ARCH ?= arm64
LAMBDA_FUNCTIONS := ingest-http ingest-events delivery stats api
TEMPLATE := infra/template.yaml
SAM := SAM_CLI_TELEMETRY=0 $(VENV_BIN)/sam
# sam validate needs a region even offline; any will do for a template check.
SAM_REGION := $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)
# LanguageExtensions (Fn::Length for maxReceiveCount) needs AUTO_EXPAND; the roles need IAM.
SAM_CAPABILITIES := CAPABILITY_IAM CAPABILITY_AUTO_EXPAND

cargo_lambda_arch = $(if $(filter arm64,$(ARCH)),--arm64,$(if $(filter x86_64,$(ARCH)),--x86-64,$(error ARCH must be arm64 or x86_64)))

.PHONY: build deploy lint-infra smoke deploy-tools

deploy-tools:
	./scripts/ensure-deploy-tools.sh

build: deploy-tools
	PATH="$(VENV_BIN):$$PATH" $(CARGO) lambda build --release $(cargo_lambda_arch) $(addprefix --bin ,$(LAMBDA_FUNCTIONS))
	./scripts/bootstrap-sizes.sh $(LAMBDA_FUNCTIONS)

# Older SAM CLIs mark the rust-cargolambda build method as beta and would stop to ask; the
# variable answers yes. sam build picks the architecture from the template, so ARCH goes in as the parameter for
# both the build and the guided deploy's default; otherwise an x86_64 choice made at the
# deploy prompt would ship arm64 binaries.
deploy: deploy-tools
	cd infra && PATH="$(VENV_BIN):$$PATH" SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 $(SAM) build --template template.yaml --parameter-overrides Architecture=$(ARCH)
	cd infra && $(SAM) deploy --guided --capabilities $(SAM_CAPABILITIES) --parameter-overrides Architecture=$(ARCH)

lint-infra: deploy-tools
	$(VENV_BIN)/cfn-lint $(TEMPLATE)
	$(SAM) validate --template $(TEMPLATE) --region $(SAM_REGION)
	$(SAM) validate --lint --template $(TEMPLATE) --region $(SAM_REGION)

smoke: deploy-tools
	./scripts/with-emulator.sh ./scripts/smoke.sh
