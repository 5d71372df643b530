"""Phase timings of the end-to-end tests, and the engine they ran on, printed at the end."""

TIMINGS: list[tuple[str, float]] = []
ENGINE: list[str] = []  # what testbed/scripts/engine-env chose: the CLI and the command provider


def pytest_terminal_summary(terminalreporter):
    if ENGINE:
        terminalreporter.section("end-to-end engine")
        for line in ENGINE:
            terminalreporter.write_line(line)
    if TIMINGS:
        terminalreporter.section("end-to-end phase wall times")
        for name, seconds in TIMINGS:
            terminalreporter.write_line(f"{name:<55} {seconds:7.1f} s")
