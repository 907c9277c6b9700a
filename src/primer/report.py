"""`python -m primer.report DIR` and `primer-report DIR`: a sweep or run dir's summary (primer.sweeps.report)."""

from primer.sweeps.report import main

if __name__ == "__main__":
    main()
