# Two commands: `make run` trains and reports the default benchmark grid; `make test` runs the tests.
# Both create .venv and install the pinned requirements first when that has not been done.
PY      := .venv/bin/python
CORES   ?= 2
STAMP   := .venv/.installed

.PHONY: run test test-slurm test-report lint docs bench clean

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	$(PY) -c "import ML, torch, gymnasium, h5py, snakemake" && touch $(STAMP)

run: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} .venv/bin/snakemake --cores $(CORES) --workflow-profile workflow/profiles/default

test: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m pytest -q -m "not slurm and not browser"

# The pipeline on a real single-node SLURM cluster (tests/cluster/slurm.sh: root installs and starts it; without
# root the tests skip with the reason, in CI they fail). The cluster is stopped afterwards if this started it.
test-slurm: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && ! tests/cluster/slurm.sh status >/dev/null 2>&1; then \
	  tests/cluster/slurm.sh start && started=1; fi; \
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m pytest -q -m slurm tests/test_slurm.py; rc=$$?; \
	if [ -n "$$started" ]; then tests/cluster/slurm.sh stop; fi; exit $$rc

# The report's first screen in headless Chromium (tests/test_browser_report.py); as root, Debian's chromium is
# installed first when none is on PATH (tests/browser/chromium.sh). Without one the test skips, in CI it fails.
test-report: $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then tests/browser/chromium.sh install; fi
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m pytest -q -m browser tests/test_browser_report.py

lint: $(STAMP)
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/mypy   # pyproject's [tool.mypy]: src/ML, strict for the contract modules

# The manual (docs/, mkdocs.yml) as a site in results/site/; --strict: a broken link or missing page fails.
docs: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[docs]' 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	.venv/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) benchmarks/overhead.py

clean:
	rm -rf results .snakemake
