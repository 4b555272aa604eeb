"""Damaged persistent-cache entries: recognised by their bytes or TensorFlow's error, removed only from nhw's directory."""

import os

import pytest

from nhw.backends.tensorflow.runtime import xla_cache


def _message(*fields: bytes) -> bytes:
    return b"".join(fields)


# field 1, varint 150; field 2, 3 bytes; field 3, fixed64; field 4, fixed32
GOOD = _message(b"\x08\x96\x01", b"\x12\x03abc", b"\x19" + bytes(8), b"\x25" + bytes(4))


def test_well_formed_accepts_wire_format():
    assert xla_cache.well_formed(GOOD)
    assert xla_cache.well_formed(b"")


@pytest.mark.parametrize("data", [
    GOOD[:-1],  # truncated inside a fixed32
    b"\x12\x05abc",  # a length past the end
    b"\x08\x96",  # a varint cut short
    b"\x0b",  # a group (wire type 3)
    b"\x0e\x00",  # wire type 6 does not exist
    b"\x00\x01",  # field number 0
])
def test_well_formed_rejects_damage(data):
    assert not xla_cache.well_formed(data)


class OutOfRangeError(Exception):
    pass


class DataLossError(Exception):
    pass


class InvalidArgumentError(Exception):
    pass


def test_is_damage_knows_tensorflows_three_messages():
    assert xla_cache.is_damage(OutOfRangeError("Read less bytes than requested [Op:f]"))
    assert xla_cache.is_damage(DataLossError("Can't parse /c/x.pb as binary proto [Op:f]"))
    assert xla_cache.is_damage(InvalidArgumentError("Serialized cache key does not match. [Op:f]"))
    assert not xla_cache.is_damage(InvalidArgumentError("Incompatible shapes: [2] vs. [3]"))
    assert not xla_cache.is_damage(ValueError("Read less bytes than requested"))


def _entries(folder, **contents):
    paths = {}
    for key, data in contents.items():
        paths[key] = folder / f"xla_compile_cache__{key}__1__XLA_CPU_JIT.pb"
        paths[key].write_bytes(data)
    return paths


def test_mend_removes_damaged_entries_of_nhws_directory_only(tmp_path):
    ours = tmp_path / "k0123456789abcdef"
    ours.mkdir()
    p = _entries(ours, good=GOOD, cut=GOOD[:-3], named=GOOD)
    other = tmp_path / "other.txt"
    other.write_bytes(b"\x0b")  # not an entry: never looked at
    err = DataLossError(f"Can't parse {p['named']} as binary proto")
    env = {xla_cache.ADDED_ENV: str(ours), "TF_XLA_FLAGS": f"{xla_cache.FLAG}={ours}"}
    directory, found = xla_cache.mend(err, env)
    assert directory == str(ours)
    assert sorted(found) == sorted([str(p["cut"]), str(p["named"])])
    assert p["good"].exists() and not p["cut"].exists() and not p["named"].exists() and other.exists()


def test_mend_only_reports_in_the_users_own_directory(tmp_path):
    p = _entries(tmp_path, cut=GOOD[:-3])
    env = {"TF_XLA_FLAGS": f"{xla_cache.FLAG}={tmp_path}"}
    directory, found = xla_cache.mend(OutOfRangeError("Read less bytes than requested"), env)
    assert directory == str(tmp_path) and found == [str(p["cut"])]
    assert p["cut"].exists()  # the user's directory: nothing deleted


def test_mend_without_a_cache(tmp_path):
    assert xla_cache.mend(OutOfRangeError("Read less bytes than requested"), {}) == (None, [])
    missing = {xla_cache.ADDED_ENV: str(tmp_path / "gone")}
    assert xla_cache.mend(OutOfRangeError("Read less bytes than requested"), missing) == (None, [])
    assert not os.path.exists(tmp_path / "gone")
