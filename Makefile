# Weft — the two commands that matter:
#   make demo   build the example workflows and run the order saga end to end
#   make test   install what the tests need, then run every suite
#
# Everything is installed project-locally or through rustup; a fresh machine
# needs only Rust (rustup) and Python 3.

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip2
GUEST_DIR   := target/$(WASM_TARGET)/guest
EXAMPLES    := hello order-saga order-rpc expense-approval
TEST_GUESTS := compat-v0-1 inbox callback fanout fanout-rpc probe diverge-v1 diverge-v2 hostile command counter counter-rpc fetcher relay net-workflow chaos-saga chaos-rpc upgrade-v1 upgrade-v2
# JavaScript and Python workflows (example-workflows/{js,python}/<name>,
# tests/guests/{js,python}/<name>), built to <name>-js.wasm / <name>-py.wasm.
JS_EXAMPLES       := hello order-saga order-rpc
PY_EXAMPLES       := hello order-saga order-rpc
JS_TEST_GUESTS    := probe hostile inbox callback fanout hostile-rpc
PY_TEST_GUESTS    := probe hostile inbox callback fanout hostile-rpc http-rpc
# C guests (example-workflows/c/<name>/*.c), built to <name>-c.wasm.
C_EXAMPLES        := hello order-saga order-rpc
JS_DEPS := guest-sdk/js/weft.js guest-sdk/js/errors.js guest-sdk/js/rpc.js guest-sdk/js/package-lock.json wit/weft.wit scripts/build-js-guest
PY_DEPS := $(wildcard guest-sdk/python/weft/*.py guest-sdk/python/weft/wit/*.wit guest-sdk/python/weft/wit/deps/*.wit) scripts/requirements.txt wit/weft.wit scripts/build-py-guest
C_DEPS  := $(wildcard guest-sdk/c/*.c guest-sdk/c/*.h guest-sdk/c/libc/*.h guest-sdk/c/bindgen/src/*.rs) wit/weft.wit scripts/build-c-guest scripts/setup-c
WEFT        := target/debug/weft

SAGA_INPUT := {"orderId":"o-1001","customer":"ada","items":[{"sku":"book","qty":2,"priceCents":1250},{"sku":"pen","qty":3,"priceCents":199}],"paymentFailures":1,"coolOffMs":1500}

.PHONY: demo demo-guests test chaos fuzz soak setup build-examples build-test-guests guests host packages lint bench bench-engine bench-aws bench-lambda bench-fanout bench-queued clean

## Tooling the build needs (idempotent): the wasm target, a project
## virtualenv (moto, the AWS emulator; componentize-py), the npm tools
## (componentize-js, esbuild) from their lock files, and Debian packages
## the tests use (strace; chromium and chromium-driver for the console).
setup:
	rustup target add $(WASM_TARGET)
	scripts/setup-python
	scripts/setup-js
	scripts/setup-debian

# Builds guest crates as components and copies them to a stable path:
# target/<dir>/<crate>.wasm (cargo names the artefact with underscores).
define build-guests
	$(CARGO) build --profile guest --target $(WASM_TARGET) $(addprefix -p ,$(2))
	mkdir -p target/$(1)
	for g in $(2); do cp $(GUEST_DIR)/$$(echo $$g | tr - _).wasm target/$(1)/$$g.wasm; done
endef

target/examples/%-js.wasm: example-workflows/js/%/index.js $(JS_DEPS)
	scripts/build-js-guest $< $@

target/examples/%-py.wasm: example-workflows/python/%/app.py $(PY_DEPS)
	scripts/build-py-guest $(dir $<) $@

# A C guest's sources are every .c file in its folder.
.SECONDEXPANSION:
target/examples/%-c.wasm: $$(wildcard example-workflows/c/$$*/*.c) $(C_DEPS)
	scripts/build-c-guest example-workflows/c/$* $@

target/test-guests/%-js.wasm: tests/guests/js/%/index.js $(JS_DEPS)
	scripts/build-js-guest $< $@

target/test-guests/%-py.wasm: tests/guests/python/%/app.py $(PY_DEPS)
	scripts/build-py-guest $(dir $<) $@

## Example workflows → target/examples/<name>.wasm (Rust), <name>-js.wasm,
## <name>-py.wasm, <name>-c.wasm
build-examples: setup
	$(call build-guests,examples,$(EXAMPLES))
	$(MAKE) $(JS_EXAMPLES:%=target/examples/%-js.wasm) $(PY_EXAMPLES:%=target/examples/%-py.wasm) \
		$(C_EXAMPLES:%=target/examples/%-c.wasm)

## Guests used only by the tests → target/test-guests/<name>.wasm
build-test-guests: setup
	$(call build-guests,test-guests,$(TEST_GUESTS))
	$(MAKE) $(JS_TEST_GUESTS:%=target/test-guests/%-js.wasm) $(PY_TEST_GUESTS:%=target/test-guests/%-py.wasm)

guests: build-examples build-test-guests

## The SDKs as their registries would receive them, nothing published: the
## crates (cargo package, verified by building each on its own) in
## target/package/, @weft/sdk (npm pack) and weft-workflows (python -m
## build) in target/packages/. The project tests build against these.
packages: setup
	$(CARGO) package --allow-dirty -p weft-guest-core -p weft-sdk -p weft-rpc
	mkdir -p target/packages
	cd guest-sdk/js && npm pack --silent --pack-destination ../../target/packages
	.venv/bin/python -m build --no-isolation --outdir target/packages guest-sdk/python > /dev/null

host:
	$(CARGO) build -p weft-host

## Build the Rust order saga, its RPC module and the host, and run the saga
## end to end on the embedded backend. (The other languages' examples are
## `make build-examples`: the demo does not wait for them.)
demo-guests:
	rustup target add $(WASM_TARGET)
	$(call build-guests,examples,order-saga order-rpc)

demo: demo-guests host
	$(WEFT) run target/examples/order-saga.wasm --rpc target/examples/order-rpc.wasm --input '$(SAGA_INPUT)'

lint:
	scripts/check-layers
	scripts/setup-python
	.venv/bin/cfn-lint deploy/template.yaml
	node --check host/console/app.js
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p weft-host -p weft-sdk -p weft-rpc -p weft-guest-core --no-deps
	scripts/setup-js
	cd guest-sdk/js && node_modules/.bin/tsc --noEmit --strict weft.d.ts rpc.d.ts errors.d.ts
	$(CARGO) clippy --target $(WASM_TARGET) $(addprefix -p ,$(EXAMPLES) $(TEST_GUESTS)) -- -D warnings

## Every suite: lint, unit, end-to-end (the AWS suites against moto).
# The chaos suite runs reduced in `make test` (30 runs per backend, one
# round); `make chaos` runs it full size.
test: setup guests host packages
	$(MAKE) lint
	FAULT_RUNS=30 scripts/with-moto $(CARGO) test --workspace $(addprefix --exclude ,$(EXAMPLES) $(TEST_GUESTS))

## The chaos suite full size: 1,000 runs per round, three rounds in a row,
## on each backend, with workers killed every few seconds and store and
## queue calls failing. Not part of `make test`.
chaos: guests host
	FAULT_RUNS=1000 FAULT_ROUNDS=3 scripts/with-moto $(CARGO) test -p weft-tests --test fault_injection -- --nocapture

## Coverage-guided fuzzing (libFuzzer, stable Rust): every target in
## fuzz/ for FUZZ_SECONDS each (default 60), corpora in target/fuzz/,
## failing inputs in target/fuzz/artifacts/, executions per target in
## target/fuzz/report.tsv. Not part of `make test`, which replays the
## seeds and every input the fuzzer found (fuzz/regressions/).
fuzz: guests
	scripts/fuzz

## Weft against Pikku and Restate, same machine, one invocation: the
## table, target/bench/results.json and target/bench/latency.png. Installs
## the peers (npm lock files in bench/peers/, redis-server from Debian).
## Not part of `make test`.
bench: guests
	bench/run

## Host overheads (criterion): replay per step, instantiation, cold loads.
bench-engine: guests
	$(CARGO) bench -p weft-tests --bench engine

## AWS requests per step (against moto); not part of `make test`.
bench-aws: guests
	scripts/with-moto $(CARGO) bench --profile dev -p weft-tests --bench aws_requests

## Fan-out cost: 100 members of 200 ms by worker concurrency, and
## activations and AWS requests per member at N = 10, 100, 1000 (embedded
## and moto); not part of `make test`.
bench-fanout: guests
	scripts/with-moto $(CARGO) bench --profile dev -p weft-tests --bench fanout

## Queued RPC steps: wall time, replays and (on moto) AWS requests and bytes
## per step of the counter workflow at N = 25 ... 10,000, with guests parked,
## replayed, and shared by two workers; not part of `make test`.
bench-queued: guests
	scripts/with-moto $(CARGO) bench --profile dev -p weft-tests --bench queued_steps

## Lambda cold starts: init and first activation of the release binaries
## (against moto); not part of `make test`.
bench-lambda: guests
	$(CARGO) build --release -p weft-host
	scripts/with-moto $(CARGO) bench -p weft-tests --bench lambda_cold_start

## The soak: 100,000 runs through one `weft dev` (embedded, retention
## on), memory, descriptors, data and latency sampled as it goes; the
## curves in target/soak/soak.png. Not part of `make test`.
soak: guests host
	$(CARGO) bench --profile dev -p weft-tests --bench soak
	.venv/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	.venv/bin/python bench/soak-plot target/soak

clean:
	$(CARGO) clean
