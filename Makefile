# Two set-up commands on a fresh machine: `make run` and `make test`.
# Both create .venv if it is missing and install the project into it.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
CORES   ?= 2
PROFILE ?= config/config.yaml
TARGET  ?= all
# `make run` restricts the paper grid to the datasets this machine can reach;
# on a connected machine use `make run DATASETS=` (empty = every dataset in the profile).
DATASETS ?= ml-100k
# Where the workflow reads archives instead of downloading them (empty = download).
CEL_DATA_MIRROR ?= $(abspath ../shared/data/movielens)
export CEL_DATA_MIRROR

.PHONY: tex run readme readme-quick test smoke quick engine venv bench mlflow-ui clean test-slurm test-services bench-scale docs report

# The library declares ranges (pyproject.toml); the workflow installs the exact versions of
# constraints.txt (torch==2.13.0: the CPU wheel) with the workflow, test and docs extras.
$(BIN)/cel: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[workflow,test,docs]'
	touch $(BIN)/cel

venv: $(BIN)/cel

run: $(BIN)/cel
	$(BIN)/snakemake $(TARGET) --cores $(CORES) --configfile $(PROFILE) --config only_datasets=$(DATASETS)

# After `make run`: copy the figures the README quotes into docs/results/ and regenerate its
# numbers (tests/test_readme.py checks the README against that snapshot)
readme: $(BIN)/cel
	$(BIN)/cel readme $(PROFILE)

smoke: $(BIN)/cel
	$(BIN)/snakemake all --cores $(CORES) --configfile config/smoke.yaml

# Every ML-100k table and figure on fold 0, timed (results/quick/wall.json; from an empty
# results/quick for the README's figure: `rm -rf results/quick && make quick && make readme-quick`)
quick: $(BIN)/cel
	$(BIN)/python scripts/timed.py results/quick/wall.json -- \
		$(BIN)/snakemake all --cores $(CORES) --configfile config/quick.yaml

readme-quick: $(BIN)/cel
	$(BIN)/cel readme config/quick.yaml --profile quick

test: $(BIN)/cel
	$(BIN)/python -m pytest -q

# Opt-in (root; Debian packages; daemons on 127.0.0.1, stopped afterwards): never part of `make test`.
# A single-node SLURM cluster running the smoke workflow (docs/scale.md)
test-slurm: $(BIN)/cel
	bash scripts/slurm/test.sh

# PostgreSQL + mlflow server: one Optuna study with 4 workers, 8 parallel training jobs, a killed worker
test-services: $(BIN)/cel
	bash scripts/services/test.sh

# CEL-Lite on power-law streams of 10^5..10^7 interactions, or SIZES="1e7 1e8" (10^8: 12.5 GB peak,
# about 80 CPU-minutes; measured in docs/scale.md)
SIZES ?= 1e5 1e6 1e7
bench-scale: $(BIN)/cel
	$(BIN)/python benchmarks/bench_stream_scale.py --sizes $(SIZES) --json benchmarks/out/stream_scale.json

# The engine's acceptance runs: ML-100k fold 0 under every Feed x Task (config/engine.yaml)
engine: $(BIN)/cel
	$(BIN)/snakemake all --cores $(CORES) --configfile config/engine.yaml

bench: $(BIN)/cel
	$(BIN)/python benchmarks/bench_nmf_step.py
	$(BIN)/python benchmarks/bench_reassign.py
	$(BIN)/python benchmarks/bench_engine.py

mlflow-ui: $(BIN)/cel
	$(BIN)/mlflow ui --backend-store-uri sqlite:///results/mlflow/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf results resources .snakemake

# API reference of the public names (cel.__all__: CELEmbedding, CELLiteEmbedding, ClusterSchedule)
docs: $(BIN)/cel
	$(BIN)/pdoc cel -o docs/api
	@echo "open docs/api/index.html"

# A TeX engine (Debian's pdflatex + latexmk; root or sudo) so that `make report` also writes the PDF
tex:
	bash scripts/install_tex.sh

# The reproduction report of a profile: tables, figures, paper values (PDF where a TeX engine exists)
report: $(BIN)/cel
	$(BIN)/snakemake report --cores $(CORES) --configfile $(PROFILE) --config only_datasets=$(DATASETS)
