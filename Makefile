# Two commands do all the set-up on a fresh machine with Python 3.10-3.13 and a C compiler:
#   make lab    install (once) and open JupyterLab on notebooks/
#   make test   install (once) and run the tests and the notebooks (quick mode)
#   make app    the notebooks as a Voila app: outputs and controls, no code (localhost only)
#   make hub    a class on one machine: JupyterHub, one Unix account per learner (as root; README)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.metakit-installed
# Extra JupyterLab options, e.g. make lab LAB_ARGS="--no-browser --port=8899"
LAB_ARGS ?=
# Extra Voila options, e.g. make app APP_ARGS="--no-browser --port=8866"
APP_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: student student-check setup lab app hub test test-fast test-pythons bench gpu-check data clean mutants train

setup: $(STAMP)

# The stamp makes a second `make lab` start at once; editing the dependencies reinstalls.
# It is written only when tools/install.sh succeeds; when it fails, the script says which package
# failed, the likely cause and where the log is, and the next `make` tries again.
$(STAMP): pyproject.toml tools/install.sh tools/constraints.txt
	@rm -f $@
	PYTHON="$(PYTHON)" VENV="$(VENV)" bash tools/install.sh
	@touch $@

# pyproject.toml's optional dependencies (test, browser, app, exercises, hub, all), each installed the first time
# a target needs it and again after the base install changes; `make lab` needs none of them.
EXTRA := $(VENV)/.extra-
$(EXTRA)%: $(STAMP)
	PIP_CONSTRAINT="$(CURDIR)/tools/constraints.txt" $(BIN)/python -m pip install -q --find-links .cache/wheels -e ".[$*]"
	@touch $@

# lab-settings/overrides.json: restore the widget state saved in the notebooks, no news prompt.
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --LabApp.app_settings_dir=$(CURDIR)/lab-settings $(ROOT_FLAG) $(LAB_ARGS)

# Voila runs a notebook when its page is opened and hides the code; the checkpoints and the stored
# results in data/checkpoints/ make that quick (benchmarks/app_open.py). A cell whose stored result no
# longer matches computes it again, and may take up to 10 minutes.
app: $(EXTRA)app
	$(BIN)/voila notebooks --Voila.ip=127.0.0.1 --VoilaExecutor.timeout=600 $(APP_ARGS)

# The class hub (README, "A class on one hub"): jupyterhub and its idle culler are the hub extra,
# configurable-http-proxy is pinned from npm into .cache/hub-node/.
# Without npm the hub test in `make test` skips and says why.
PROXY_INSTALL = test -x .cache/hub-node/node_modules/.bin/configurable-http-proxy || { command -v npm >/dev/null && npm install -q --prefix .cache/hub-node --no-audit --no-fund "configurable-http-proxy@5.0.1"; } || echo "npm not found: no configurable-http-proxy, so no hub"
# Learners log in with METAKIT_HUB_PASSWORD; the roster is METAKIT_HUB_USERS, instructors
# METAKIT_HUB_ADMINS (hub/jupyterhub_config.py lists every setting), e.g.
#   sudo make hub METAKIT_HUB_PASSWORD=... METAKIT_HUB_USERS="ada alan" METAKIT_HUB_ADMINS=grace
# The glyph cache is built once here, by root, and read by every learner.
HUB_ARGS ?=
hub: $(EXTRA)hub
	$(PROXY_INSTALL)
	$(BIN)/python -c "import metakit; metakit.load_glyphs('background'); metakit.load_glyphs('evaluation')"
	METAKIT_HUB_PASSWORD="$(METAKIT_HUB_PASSWORD)" METAKIT_HUB_USERS="$(METAKIT_HUB_USERS)" METAKIT_HUB_ADMINS="$(METAKIT_HUB_ADMINS)" \
	  $(BIN)/jupyterhub -f hub/jupyterhub_config.py $(HUB_ARGS)

# nbgrader (the exercises extra) makes the learners' versions; ruff (ruff.toml) is in the test extra.
EXERCISE_NOTEBOOKS ?= $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

# The student versions (solutions replaced by a runnable stub, outputs cleared) in student/.
student: $(EXTRA)exercises
	$(BIN)/python -m metakit.student student $(EXERCISE_NOTEBOOKS)

# Every student notebook runs without an error cell, and autograde gives full marks and zero (CI: 01, 02).
student-check: $(EXTRA)test
	METAKIT_STUDENT_NOTEBOOKS=all MPLBACKEND=agg $(BIN)/python -m pytest tests/test_student_notebooks.py -p no:cacheprovider -v

# Tests first (they also build the glyph cache), then every notebook under nbval in quick mode, computing
# every stored result (metakit.results) afresh, into .cache/results.
test: $(EXTRA)all
	$(PROXY_INSTALL)
	METAKIT_QUICK=1 METAKIT_RECOMPUTE=1 METAKIT_RESULTS=$(CURDIR)/.cache/results MPLBACKEND=agg $(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider

test-fast: $(EXTRA)test
	$(BIN)/python -m pytest tests -x -q

# Not part of `make test` (20+ minutes: outside 3.11 torch comes from the package index). For each
# Python 3.10-3.13 that pyenv has: a fresh .venv-3.X through tools/install.sh, then the smoke subset
# (tools/smoke.py and notebook 01 under nbval, quick mode); one line per version. .ci/run runs it
# when the install files change; see tools/test_pythons.sh.
test-pythons:
	bash tools/test_pythons.sh

# Mutation testing of the core algorithm modules (mutmut 3, each module against its own tests, one
# worker): slow, so not part of `make test`. MODULES="stats continual/methods" picks some.
# Prints a score per module; tests/mutants/README.md argues the survivors.
mutants: $(EXTRA)test
	$(BIN)/python -c "import mutmut" 2>/dev/null || $(BIN)/python -m pip install -q "mutmut==3.8.1"
	OMP_NUM_THREADS=1 nice -n 5 $(BIN)/python tests/mutants/run.py $(MODULES)

# A long training from the command line (README, "Long trainings"), e.g.
#   make train ARGS="family --algorithm maml --steps 2000"           one process
#   make train NPROC=2 ARGS="metric --method proto --seconds 600"     2 processes through torchrun
NPROC ?= 1
ARGS  ?= --help
train: $(STAMP)
	$(if $(filter 1,$(NPROC)),$(BIN)/python,$(BIN)/torchrun --standalone --nproc_per_node $(NPROC)) -m metakit.train $(ARGS)

bench: $(EXTRA)all
	$(PROXY_INSTALL)
	$(BIN)/python benchmarks/run_all.py

# On a machine with a GPU: one real step of every algorithm, every notebook in quick mode and the
# benchmarks' short versions with METAKIT_DEVICE=cuda, timed against the CPU run in RESULTS.md.
# GPU_ARGS="--device cpu" makes that CPU run; see benchmarks/gpu_check.py.
gpu-check: $(EXTRA)test
	$(BIN)/python benchmarks/gpu_check.py $(GPU_ARGS)

data: $(STAMP)
	$(BIN)/python -c "import metakit; metakit.load_glyphs('all', rebuild=True)"

clean:
	rm -rf $(VENV) .venv-3.1? .cache data/glyphs-*
