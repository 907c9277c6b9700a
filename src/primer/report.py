"""`python -m primer.report DIR` and `primer-report DIR`: the summary of a sweep or run dir, rebuilt from
what its job dirs hold; the work is in primer.sweeps.report (`python -m primer.sweeps.report` runs it too)."""


def main() -> None:
    from primer.sweeps.report import main as report_command

    report_command()


if __name__ == "__main__":
    main()
