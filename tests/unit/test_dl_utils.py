"""nhw.dl.utils: NengoDL's documented utility functions, without TensorFlow on import."""

import io
import subprocess
import sys

import numpy as np
import pytest
from nengo.exceptions import SimulationError

from nhw.dl import utils


def test_import_does_not_import_tensorflow():
    code = "import sys, nhw.dl.utils, nhw.dl as d; d.utils.sanitize_name('x'); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("name, expected", [("a b", "a_b"), ("x:0", "x_0"), ("a*b&c", "abc"),
                                            ("ok/x-1.2_y", "ok/x-1.2_y"), (3, "3")])
def test_sanitize_name(name, expected):
    assert utils.sanitize_name(name) == expected


def test_function_name():
    def my_func(x):
        return x

    class Call:
        def __call__(self):
            pass

    assert utils.function_name(my_func) == "my_func"
    assert utils.function_name(Call()) == "Call"
    assert utils.function_name(lambda: 0, sanitize=False) == "<lambda>"
    assert utils.function_name(lambda: 0) == "lambda"


def test_align_func_casts_and_refuses_bad_outputs():
    assert utils.align_func(np.float32)(lambda: [1, 2])().dtype == np.float32
    for value, match in [(None, "returned None"), ([np.nan], "invalid value"), ("text", "invalid type")]:
        with pytest.raises(SimulationError, match=match):
            utils.align_func(np.float64)(lambda v=value: v)()


def test_progress_bar_steps_and_finishes_with_past_tense():
    out = io.StringIO()
    with utils.ProgressBar("Simulating", "Simulation", max_value=4, stream=out) as bar:
        for _ in range(4):
            bar.step()
        sub = bar.sub("building", stream=out).start()
    assert bar.finished and sub.finished and bar.value == 4
    text = out.getvalue()
    assert "Simulating: 100%" in text and "Simulation finished in" in text
    assert "Simulating: building" in text


def test_progress_bar_wraps_an_iterable_and_null_bar_is_silent():
    out = io.StringIO()
    assert list(utils.ProgressBar("Looping", stream=out)(range(3))) == [0, 1, 2]
    assert "Looping finished in" in out.getvalue()
    quiet = io.StringIO()
    null = utils.NullProgressBar("x", stream=quiet)
    with null:
        null.step()
    assert null.sub("y") is null and quiet.getvalue() == ""
