"""The parsed SimBench grid cached on disk (``profiles.load_grid``) is the grid SimBench gives."""

from __future__ import annotations

import simbench

from gridledger.network import profiles
from gridledger.network.model import NetworkModel

CODE = "1-LV-rural2--0-sw"  # 97 buses: parsed in a second or two


def test_the_cached_grid_is_the_parsed_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_CACHE_DIR", str(tmp_path))
    profiles.load_grid.cache_clear()
    try:
        first = profiles.load_grid(CODE)  # parsed by SimBench, then written
        (cached,) = (tmp_path / "simbench").iterdir()
        assert cached.name.startswith(f"{CODE}.simbench-{simbench.__version__}-pandas-")
        profiles.load_grid.cache_clear()
        again = profiles.load_grid(CODE)  # read back from the file
    finally:
        profiles.load_grid.cache_clear()
    assert again is not first
    # The model's version hashes every element table: the same net to the last digit and dtype.
    assert NetworkModel(again, source=CODE).version == NetworkModel(first, source=CODE).version
    assert again.profiles.keys() == first.profiles.keys()
    for name, table in first.profiles.items():
        assert again.profiles[name].equals(table), name


def test_a_damaged_cache_file_is_parsed_again(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_CACHE_DIR", str(tmp_path))
    path = profiles._grid_cache(CODE)
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    profiles.load_grid.cache_clear()
    try:
        net = profiles.load_grid(CODE)
    finally:
        profiles.load_grid.cache_clear()
    assert len(net.bus) == 97
    assert path.read_bytes() != b"not a pickle"  # rewritten with the parsed grid
