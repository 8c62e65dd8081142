# `make run` and `make test` work on a fresh machine with Python 3.10+ and git: each installs
# what is missing into .venv first.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install run test test-docker lint

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(VENV)/bin/sentiment up $(ARGS)

# Tests in parallel (pytest-xdist), a process per core up to 4: most of their time is spent
# waiting on the processes they start.
test: $(STAMP)
	$(VENV)/bin/pytest --numprocesses=auto --maxprocesses=4 $(ARGS)

# The project's image and docker-compose.yml on a Docker engine (tests/test_docker.py): minutes.
test-docker: $(STAMP)
	$(VENV)/bin/pytest -m docker tests/test_docker.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
