"""`python -m primer.eval` and `primer-eval`: primer.evaluate from the command line (its usage: primer.cli.eval).

Heavy imports happen inside `main`, after primer.exits has taken over Ctrl-C and SIGTERM."""

import sys

from primer import exits


def main(argv: list[str] | None = None) -> None:
    with exits.command_line():
        from primer.api import evaluate
        from primer.cli.eval import arguments, notes

        if (parsed := arguments(sys.argv[1:] if argv is None else argv)) is not None:
            _, objects = evaluate(*parsed)
            print(objects["eval_json"].read_text(), end="")
            print(f"wrote {objects['eval_json']}", file=sys.stderr)
            for note in notes(objects["cfg"], parsed[1]):
                print(f"note: {note}", file=sys.stderr)


if __name__ == "__main__":
    main()
