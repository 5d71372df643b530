"""Phase timings of the end-to-end tests, printed at the end of the run."""

TIMINGS: list[tuple[str, float]] = []


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("end-to-end phase wall times")
        for name, seconds in TIMINGS:
            terminalreporter.write_line(f"{name:<55} {seconds:7.1f} s")
