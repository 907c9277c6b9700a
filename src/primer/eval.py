"""`python -m primer.eval` and `primer-eval` (primer.cli.eval does the work)."""

from primer.cli.eval import main

if __name__ == "__main__":
    main()
