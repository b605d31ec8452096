# The two commands of the quick start, and the tools behind them.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The product's own packages, compiled to bytecode at install as `pip install` does for any installed package:
# an editable install under PYTHONDONTWRITEBYTECODE (set on these machines) would otherwise compile every module
# from source in every process — ≈ 0.2 s of CPU per command and per flow process (README, "Commands").
CODE := models core tasks flows notifications deploy sanjin web benchmarks

.PHONY: demo test lint typecheck pytest bench clean install browser

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "需要 Python 3.11 / Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	$(BIN)/python -m compileall -q -j 0 $(CODE)
	touch $(STAMP)

# Also after a `git pull` that changed no dependency: the bytecode follows the sources.
install: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 $(CODE)

demo: $(STAMP)
	$(BIN)/sanjin demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy models core tasks flows notifications sanjin deploy web

# Browser tests drive Debian's Chromium (never a downloaded browser); a CJK font makes Chinese legible
# in screenshots. The print test converts the published XLSX files to PDF with Debian's headless LibreOffice
# (libreoffice-calc-nogui) and reads the pages back with poppler-utils. Best effort here: without root or apt
# those tests skip and say why.
browser:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null) \
	  || echo "Chromium not installed: browser tests will skip"; }
	@{ test -x /usr/bin/soffice && test -x /usr/bin/pdftotext; } || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libreoffice-calc-nogui poppler-utils \
	   fonts-wqy-microhei >/dev/null) || echo "LibreOffice not installed: the print test will skip"; }

pytest: $(STAMP) browser
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadgroup

test: lint pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
