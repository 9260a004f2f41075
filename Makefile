# Weft — the two commands that matter:
#   make demo   build the example workflows and run the order saga end to end
#   make test   install what the tests need, then run every suite
#
# Everything is installed project-locally or through rustup; a fresh machine
# needs only Rust (rustup) and Python 3.

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip2
GUEST_DIR   := target/$(WASM_TARGET)/guest
EXAMPLES    := hello order-saga order-rpc
TEST_GUESTS := probe diverge-v1 diverge-v2 hostile command counter counter-rpc fetcher relay net-workflow chaos-saga chaos-rpc
WEFT        := target/debug/weft

SAGA_INPUT := {"orderId":"o-1001","customer":"ada","items":[{"sku":"book","qty":2,"priceCents":1250},{"sku":"pen","qty":3,"priceCents":199}],"paymentFailures":1,"coolOffMs":1500}

.PHONY: demo test setup build-examples build-test-guests guests host lint bench bench-aws clean

## Tooling the build needs (idempotent): the wasm target, and a project
## virtualenv with moto (the AWS emulator the tests use).
setup:
	rustup target add $(WASM_TARGET)
	scripts/setup-python

# Builds guest crates as components and copies them to a stable path:
# target/<dir>/<crate>.wasm (cargo names the artefact with underscores).
define build-guests
	$(CARGO) build --profile guest --target $(WASM_TARGET) $(addprefix -p ,$(2))
	mkdir -p target/$(1)
	for g in $(2); do cp $(GUEST_DIR)/$$(echo $$g | tr - _).wasm target/$(1)/$$g.wasm; done
endef

## Example workflows → target/examples/<name>.wasm
build-examples: setup
	$(call build-guests,examples,$(EXAMPLES))

## Guests used only by the tests → target/test-guests/<name>.wasm
build-test-guests: setup
	$(call build-guests,test-guests,$(TEST_GUESTS))

guests: build-examples build-test-guests

host:
	$(CARGO) build -p weft-host

## Build the examples and run the order saga end to end on the embedded backend.
demo: build-examples host
	$(WEFT) run target/examples/order-saga.wasm --rpc target/examples/order-rpc.wasm --input '$(SAGA_INPUT)'

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) $(addprefix -p ,$(EXAMPLES) $(TEST_GUESTS)) -- -D warnings

## Every suite: lint, unit, end-to-end (the AWS suites against moto).
test: setup guests host
	$(MAKE) lint
	scripts/with-moto $(CARGO) test --workspace $(addprefix --exclude ,$(EXAMPLES) $(TEST_GUESTS))

## Benchmarks (criterion); not part of `make test`.
bench: guests
	$(CARGO) bench -p weft-tests --bench engine

## AWS requests per step (against moto); not part of `make test`.
bench-aws: guests
	scripts/with-moto $(CARGO) bench --profile dev -p weft-tests --bench aws_requests

clean:
	$(CARGO) clean
