"""`python -m primer.train` and `primer-train` (primer.cli.train does the work)."""

from primer.cli.train import main

if __name__ == "__main__":
    main()
