"""A raw py-spy profile over the raw-trace cap is not kept (its summary is in the record)."""

from __future__ import annotations

from pathlib import Path

from perfscope.collectors.pyspy import _cap_profile


def test_a_profile_over_the_cap_is_dropped_with_a_note(tmp_path: Path) -> None:
    big = tmp_path / "pyspy.speedscope.json"
    big.write_bytes(b"x" * (3 * 2**20))
    note = _cap_profile(big, max_mb=2)
    assert not big.exists()
    assert note == "pyspy.speedscope.json (3 MB) was over the 2 MB cap and was not kept"


def test_a_profile_under_the_cap_is_kept(tmp_path: Path) -> None:
    small = tmp_path / "pyspy.speedscope.json"
    small.write_bytes(b"{}")
    assert _cap_profile(small, max_mb=2) is None and small.exists()
