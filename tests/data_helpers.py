"""Assertions shared by the data tests."""

from pathlib import Path


def assert_failed_cleanly(result, expected: str, out: Path) -> None:
    """The command stopped with one `error:` line containing `expected`, exit status 2, and wrote nothing."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no staging left


def check_bad_input(make, damage, run, out: Path) -> None:
    """Build a good fixture (`make()`), damage it (`damage()` returns the text the error must show), run the
    command (`run(out)`) and check that it failed cleanly."""
    make()
    expected = damage()
    assert_failed_cleanly(run(out), expected, out)
