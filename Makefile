# Thin entry points; the work is in scripts/ and cargo.
DATA_DIR ?= $(CURDIR)/data

.PHONY: run test bench build

run:
	scripts/install-deps.sh run
	cargo build --release
	@echo "capstan server: data in $(DATA_DIR); stop with Ctrl-C"
	./target/release/capstan server --data-dir $(DATA_DIR)

test:
	scripts/install-deps.sh test
	scripts/test.sh

build:
	scripts/install-deps.sh run
	cargo build --release

bench: build
	./target/release/capstan bench store --backend sqlite --clients 64 --ops 100000
	./target/release/capstan bench store --backend etcd --clients 64 --ops 100000
