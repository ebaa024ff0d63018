# mpi-sgd: `make run` trains the default model on 8 ranks; `make test` runs every test.
# Both install missing system packages first (`make deps`).
#
# Variables: MPI (the MPI family: openmpi, the default, or mpich; each builds into its own
# target directory), NP (ranks, default 8), ARGS (extra `train` options), OUT (run file),
# HOSTFILE (an MPI hostfile, see hostfiles/), BIND (bind ranks: core, none, ...).
# Scaling studies: RANKS (rank counts), REPEAT (runs of each), STUDY (the study's folder,
# default results/<kind>-<time>), PER_RANK and BATCH_PER_RANK (rows, and rows per step, on
# each rank of a weak study), SIZES (strong: the study once per --samples value, e.g.
# SIZES="5000 10000 20000 40000", each in STUDY/samples-N; the report draws a curve per size).
# compare-algorithms: RANKS (default 1 2 4) and WORKLOAD (the
# shared `train` options, see jobs/compare.sbatch).

NP       ?= 8
ARGS     ?=
OUT      ?= results/run.h5
HOSTFILE ?=
RANKS    ?= 1 2 4 8
REPEAT   ?= 3
STUDY    ?=
SIZES    ?=
PER_RANK ?= 125000
BATCH_PER_RANK ?= 1024
MPI      ?= openmpi
VENV     := .venv

# The MPI family: its Debian packages, its pkg-config name and its target directory. The
# binary is linked with the library pkg-config names, when there is one (MPI_PKG_CONFIG
# chooses another); otherwise with the one `mpicc` wraps (`module load mpich` on a cluster).
ifeq ($(MPI),openmpi)
MPI_PACKAGES := libopenmpi-dev openmpi-bin
MPI_PC       := ompi
TARGET_DIR   := target
else ifeq ($(MPI),mpich)
MPI_PACKAGES := libmpich-dev mpich
MPI_PC       := mpich
TARGET_DIR   := target/mpich
else
$(error MPI=$(MPI): use MPI=openmpi or MPI=mpich)
endif
BIN := $(TARGET_DIR)/release/mpi-sgd
# Evaluated when a recipe runs, after `make deps` has installed the packages.
MPI_PKG_CONFIG ?= $(shell pkg-config --exists $(MPI_PC) 2>/dev/null && echo $(MPI_PC))
CARGO = $(if $(MPI_PKG_CONFIG),MPI_PKG_CONFIG=$(MPI_PKG_CONFIG)) CARGO_TARGET_DIR=$(TARGET_DIR) cargo

# Debian/Ubuntu packages the build, the tests and the HDF5 tools need.
DEB_PACKAGES := build-essential pkg-config libclang-dev $(MPI_PACKAGES) \
                libhdf5-dev hdf5-tools libopenblas-dev python3-venv slurm-wlm munge \
                iproute2 kmod

.PHONY: all deps build run test test-mpi test-slurm test-emulated lint bench fuzz clean strong weak allreduce-sweep analyze venv compare-algorithms emulated-study extrap

all: build

# Installs what is missing: apt-get as root, through sudo otherwise. On other systems it
# checks for the tools and prints the command that installs them.
deps:
	@command -v cargo >/dev/null || { echo "make deps: cargo not found; install Rust from https://rustup.rs, then run make again" >&2; exit 1; }
	@if command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then \
	  missing=""; \
	  for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	  done; \
	  [ -z "$$missing" ] && exit 0; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null; then sudo="sudo"; \
	  else echo "make deps: need root to install:$$missing" >&2; exit 1; fi; \
	  echo "make deps: installing$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	elif command -v mpirun >/dev/null && pkg-config --exists hdf5 2>/dev/null; then \
	  echo "make deps: not a Debian system; found mpirun and HDF5, assuming OpenBLAS and libclang too"; \
	else \
	  echo "make deps: install MPI, HDF5, OpenBLAS and libclang, then run make again:" >&2; \
	  echo "  Fedora/RHEL: sudo dnf install openmpi-devel hdf5-devel openblas-devel clang-devel pkgconf && module load mpi/openmpi-x86_64" >&2; \
	  echo "  macOS:       brew install open-mpi hdf5 openblas llvm pkg-config" >&2; \
	  echo "  cluster:     module load openmpi hdf5 openblas   (names vary by site: module avail)" >&2; \
	  exit 1; \
	fi

build: deps
	$(CARGO) build --release

# Launching goes through jobs/launch.sh, the one place that knows how (the family's mpirun or
# mpiexec, or srun; a hostfile; Open MPI's oversubscription and run-as-root permissions only
# where needed).
export HOSTFILE NP MPI BIN BIND

# The main job: default model and data on NP ranks, run file in OUT (overwritten).
run: build
	@mkdir -p $(dir $(OUT))
	@bash -c 'source jobs/launch.sh && launch $(NP) $(BIN) train --out $(OUT) --force $(ARGS)'

# Scaling studies run the Slurm scripts, which work unchanged outside Slurm: every rank count
# of RANKS, REPEAT times, repeats outermost.
study_env = RANKS="$(RANKS)" REPEAT="$(REPEAT)" STUDY="$(STUDY)" ARGS="$(ARGS)" SIZES="$(SIZES)"

# Strong scaling: the same global problem on every rank count.
strong: build
	@$(study_env) bash jobs/strong.sbatch

# Weak scaling: PER_RANK rows and BATCH_PER_RANK rows per step on every rank.
weak: build
	@$(study_env) PER_RANK="$(PER_RANK)" BATCH_PER_RANK="$(BATCH_PER_RANK)" bash jobs/weak.sbatch

# bench-allreduce on NP ranks, REPEAT sweeps, into one study folder.
allreduce-sweep: build
	@$(study_env) bash jobs/allreduce.sbatch

# Training algorithms side by side (sync, local SGD, EASGD, fedavg, async-ps) on RANKS (default
# 1 2 4) and one workload (WORKLOAD, see jobs/compare.sbatch), then the comparison report:
# accuracy against time and bytes, and the time to a target accuracy, in the study folder.
COMPARE_STUDY = $(or $(STUDY),results/compare-$(shell date +%Y%m%d-%H%M%S))
compare-algorithms: build venv
	@study="$(COMPARE_STUDY)"; \
	RANKS="$(if $(filter command line environment,$(origin RANKS)),$(RANKS),1 2 4)" \
	  STUDY="$$study" ARGS="$(ARGS)" bash jobs/compare.sbatch && \
	$(VENV)/bin/python -m analysis compare "$$study"

venv: $(VENV)/.installed
$(VENV)/.installed: analysis/requirements.txt | deps
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r analysis/requirements.txt
	touch $@

# The report of a study folder: tables, plots, report.md, written into the folder.
# INCLUDE_OVERSUBSCRIBED=1 fits runs with more ranks than cores too (marked in the report).
analyze: venv
	@[ -n "$(STUDY)" ] || { echo "make analyze: give the study folder, e.g. make analyze STUDY=results/strong-..." >&2; exit 2; }
	$(VENV)/bin/python -m analysis report $(STUDY) $(if $(INCLUDE_OVERSUBSCRIBED),--include-oversubscribed)

# The study's measurements in Extra-P's JSON Lines format (runs.jsonl, allreduce.jsonl in the
# folder): `extrap --json STUDY/runs.jsonl`.
extrap: venv
	@[ -n "$(STUDY)" ] || { echo "make extrap: give the study folder, e.g. make extrap STUDY=results/strong-..." >&2; exit 2; }
	$(VENV)/bin/python -m analysis extrap $(STUDY)

# An emulated cluster (root): HOSTS ("2 3 4") network namespaces with RATE (1gbit) links,
# PER_HOST ("1 2") ranks per host; allreduce sweeps there and on shared memory, a strong study
# of every algorithm, then the report of fitted models checked where they were not fitted
# (bench/emulated_study.sh has every variable). INCLUDE_OVERSUBSCRIBED=1 as for analyze.
EMULATED_STUDY = $(or $(STUDY),results/emulated-$(shell date +%Y%m%d-%H%M%S))
emulated-study: build venv
	@study="$(EMULATED_STUDY)"; \
	STUDY="$$study" BIN=$(BIN) bash bench/emulated_study.sh && \
	$(VENV)/bin/python -m analysis emulated "$$study" $(if $(INCLUDE_OVERSUBSCRIBED),--include-oversubscribed)

test: deps venv
	$(CARGO) test --release
	$(VENV)/bin/python -m pytest -q analysis/tests
	@if [ "$$(id -u)" = 0 ]; then bash tests/slurm.sh && BIN=$(BIN) bash tests/emulated.sh; \
	else echo "make test: the Slurm and emulated-cluster tests were NOT run: they start daemons and network namespaces, which needs root (sudo make test-slurm test-emulated)"; fi

# The integration tests alone (tests/*.rs: every subcommand under the family's launcher), e.g.
# `make test-mpi MPI=mpich` after `make test`, with the ones that need both families installed
# (the binary under the other family's launcher).
test-mpi: deps
	$(CARGO) test --release --no-fail-fast --test '*' -- --include-ignored

# The emulated cluster (bench/cluster.sh): namespaces, a 4-host job, the link rate, teardown (root).
test-emulated: deps build
	BIN=$(BIN) bash tests/emulated.sh

# A single-node Slurm on this machine runs jobs/strong.sbatch (root: it starts the daemons).
test-slurm: deps build
	bash tests/slurm.sh

# Formatting, clippy, and the layers of src/ (no module imports one above it, no import cycle).
lint: deps
	cargo fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) test --release --test layers

# Open MPI (the default): mpi-sgd against its NumPy and mpi4py peers, the allreduce
# algorithms, the data path, the step's modes (--overlap, --reproducible). MPI=mpich: the two families side by side (both are built; the
# mpi4py peer is built for Open MPI, so the training comparison stays there).
bench: build venv
ifeq ($(MPI),openmpi)
	bash bench/run.sh
	bash bench/allreduce.sh
	bash bench/data.sh
	bash bench/step_modes.sh
else
	$(MAKE) deps MPI=openmpi
	bash bench/families.sh
endif

# The property tests of the text parsers (CSV, LIBSVM, option lists) with many more cases
# than `make test` runs (256 each).
fuzz: deps
	PROPTEST_CASES=$${PROPTEST_CASES:-20000} $(CARGO) test --release --bin mpi-sgd fuzz_

clean:
	cargo clean
	rm -rf bench/build $(VENV)
