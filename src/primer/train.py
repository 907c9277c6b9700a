"""`python -m primer.train` and `primer-train` (the work is in primer.cli.train). Heavy imports happen inside
`main`, after primer.exits has taken over Ctrl-C and SIGTERM, so that a signal during them ends in one line too."""

from primer import exits


def main() -> None:
    with exits.command_line():
        from primer.cli.train import main as train_command

        train_command()


if __name__ == "__main__":
    main()
