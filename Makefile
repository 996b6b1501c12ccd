# Two commands: `make run` trains and reports the default benchmark grid; `make test` runs the tests.
# Both create .venv and install the pinned requirements first when that has not been done.
PY      := .venv/bin/python
CORES   ?= 2
STAMP   := .venv/.installed

.PHONY: run test lint bench clean

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	$(PY) -c "import ML, torch, gymnasium, h5py, snakemake" && touch $(STAMP)

run: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} .venv/bin/snakemake --cores $(CORES) --workflow-profile workflow/profiles/default

test: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m pytest -q

lint: $(STAMP)
	.venv/bin/ruff check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/overhead.py

clean:
	rm -rf results .snakemake
