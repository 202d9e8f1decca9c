# The two commands of the README, plus helpers. Both create or reuse .venv first.
.PHONY: quickstart test clean-notebooks

quickstart:  ## set up, then run the quickstart experiment (results table + run folder)
	bash scripts/quickstart.sh

test:        ## set up, then run unit tests and every notebook (smoke profile)
	bash scripts/test.sh

clean-notebooks:  ## strip outputs from the notebooks before committing
	.venv/bin/python scripts/strip_notebooks.py notebooks/*.ipynb
