"""The persistent XLA cache's size cap: least recently used entries go, nothing else does."""

import os

import pytest

from nhw.backends.tensorflow.runtime import xla_cache
from nhw.errors import ConfigError

NOW = 1_000_000.0


def _entry(folder, key: str, size: int, used: float, name: str | None = None):
    path = folder / (name or f"xla_compile_cache__{key}__1__XLA_CPU_JIT.pb")
    path.write_bytes(b"x" * size)
    os.utime(path, (used, used))
    return path


def test_prune_deletes_least_recently_used_until_under_cap(tmp_path):
    old = _entry(tmp_path, "old", 400, NOW - 3000)
    mid = _entry(tmp_path, "mid", 400, NOW - 2000)
    new = _entry(tmp_path, "new", 400, NOW - 1000)
    result = xla_cache.prune(str(tmp_path), 900, now=NOW)
    assert result == xla_cache.PruneResult(removed=1, freed_bytes=400, kept_bytes=800)
    assert not old.exists() and mid.exists() and new.exists()
    assert xla_cache.prune(str(tmp_path), 900, now=NOW).removed == 0  # already under the cap


def test_prune_uses_the_later_of_access_and_modification_time(tmp_path):
    read_lately = _entry(tmp_path, "read", 400, NOW - 5000)
    os.utime(read_lately, (NOW - 100, NOW - 5000))  # loaded recently, written long ago
    written = _entry(tmp_path, "written", 400, NOW - 2000)
    xla_cache.prune(str(tmp_path), 500, now=NOW)
    assert read_lately.exists() and not written.exists()


def test_prune_keeps_young_entries_and_foreign_files(tmp_path):
    young = _entry(tmp_path, "young", 1000, NOW - 10)  # another process may still write it
    other = _entry(tmp_path, "", 1000, NOW - 9000, name="notes.pb")
    partial = _entry(tmp_path, "", 1000, NOW - 9000, name="xla_compile_cache__k.pb.tmp")
    sub = tmp_path / "xla_compile_cache__dir.pb"
    sub.mkdir()
    target = _entry(tmp_path, "", 10, NOW - 9000, name="elsewhere.bin")
    link = tmp_path / "xla_compile_cache__link__1.pb"
    link.symlink_to(target)
    result = xla_cache.prune(str(tmp_path), 0, now=NOW)
    assert result.removed == 0 and result.kept_bytes == 1000
    assert all(p.exists() for p in (young, other, partial, sub, target, link))


def test_prune_all_old_entries_when_cap_is_zero(tmp_path):
    for k in range(3):
        _entry(tmp_path, str(k), 100, NOW - 100 * (k + 1))
    assert xla_cache.prune(str(tmp_path), 0, now=NOW).removed == 3
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value, expected", [(None, 1024 * 2**20), ("0", 0), ("1.5", int(1.5 * 2**20)),
                                             (" 200 ", 200 * 2**20)])
def test_max_cache_bytes(value, expected):
    env = {} if value is None else {xla_cache.MAX_MB_ENV: value}
    assert xla_cache.max_cache_bytes(env) == expected


@pytest.mark.parametrize("value", ["", "lots", "-1", "nan", "inf", "1GB"])
def test_max_cache_bytes_rejects_invalid_values(value):
    with pytest.raises(ConfigError) as info:
        xla_cache.max_cache_bytes({xla_cache.MAX_MB_ENV: value})
    message = str(info.value)
    assert "NHW_XLA_CACHE_MAX_MB" in message and "number of MiB >= 0" in message and repr(value) in message


def test_configure_prunes_nhws_directory_only(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for folder in (ours, theirs):
        folder.mkdir()
        _entry(folder, "a", 2 * 2**20, 1000.0)
        _entry(folder, "b", 2 * 2**20, 2000.0)
    env = {"NHW_XLA_CACHE": str(ours), xla_cache.MAX_MB_ENV: "3"}
    key = xla_cache.environment_key(env)
    assert xla_cache.configure(env) == str(ours / key)
    # an entry left directly in the directory (by an earlier nhw) counts and goes first
    assert sorted(p.name for p in ours.iterdir()) == [key, "xla_compile_cache__b__1__XLA_CPU_JIT.pb"]
    env = {"TF_XLA_FLAGS": f"{xla_cache.FLAG}={theirs}", xla_cache.MAX_MB_ENV: "3"}
    assert xla_cache.configure(env) == str(theirs)
    assert len(list(theirs.iterdir())) == 2  # the user's own directory is never pruned


def test_configure_rejects_an_invalid_cap_before_changing_anything(tmp_path):
    env = {"NHW_XLA_CACHE": str(tmp_path / "c"), xla_cache.MAX_MB_ENV: "big"}
    with pytest.raises(ConfigError, match="NHW_XLA_CACHE_MAX_MB"):
        xla_cache.configure(env)
    assert "TF_XLA_FLAGS" not in env and not (tmp_path / "c").exists()


def test_prune_counts_every_environments_subdirectory_under_one_cap(tmp_path):
    one, two = tmp_path / "k0123456789abcdef", tmp_path / "kfedcba9876543210"
    one.mkdir()
    two.mkdir()
    oldest = _entry(one, "a", 400, NOW - 3000)
    older = _entry(two, "b", 400, NOW - 2000)
    newest = _entry(one, "c", 400, NOW - 1000)
    other = tmp_path / "not-a-key"  # not a directory nhw made: never looked into
    other.mkdir()
    foreign = _entry(other, "d", 4000, NOW - 9000)
    result = xla_cache.prune(str(tmp_path), 500, now=NOW)
    assert result == xla_cache.PruneResult(removed=2, freed_bytes=800, kept_bytes=400)
    assert not oldest.exists() and not older.exists() and newest.exists() and foreign.exists()


def test_prune_does_not_follow_a_linked_subdirectory(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    kept = _entry(elsewhere, "a", 400, NOW - 3000)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "k0123456789abcdef").symlink_to(elsewhere, target_is_directory=True)
    assert xla_cache.prune(str(cache), 0, now=NOW).removed == 0
    assert kept.exists()
