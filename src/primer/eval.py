"""`python -m primer.eval` and `primer-eval`; the work is in primer.cli.eval.

Heavy imports happen inside `main`, after primer.exits has taken over Ctrl-C and SIGTERM.
"""

from primer import exits


def main() -> None:
    with exits.command_line():
        from primer.cli.eval import main as eval_command

        eval_command()


if __name__ == "__main__":
    main()
