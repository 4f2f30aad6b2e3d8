"""helpers.progress: one switch for every progress bar."""

from __future__ import annotations

import io

import pytest

from helpers import progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def no_switch(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return monkeypatch


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("on", True), ("YES", True),
                                                 ("0", False), ("false", False), ("", False)])
def test_env_switch_decides(no_switch, value, expected):
    no_switch.setenv(progress.ENV, value)
    no_switch.setenv("JPY_SESSION_NAME", "chapter.ipynb")  # the switch wins over detection
    assert progress.enabled() is expected


def test_bad_switch_names_the_value(no_switch):
    no_switch.setenv(progress.ENV, "sometimes")
    with pytest.raises(ValueError, match="NOISESCALING_PROGRESS.*'sometimes'"):
        progress.enabled()


def test_off_without_a_watcher_on_for_a_terminal_or_jupyter(no_switch):
    no_switch.setattr("sys.stderr", io.StringIO())  # papermill, jupyter-book, pytest, CI
    assert progress.enabled() is False
    no_switch.setattr("sys.stderr", _Tty())
    assert progress.enabled() is True
    no_switch.setattr("sys.stderr", io.StringIO())
    no_switch.setenv("JPY_SESSION_NAME", "/home/me/sc_protein.ipynb")
    assert progress.enabled() is True


def test_bar_draws_only_when_enabled(no_switch):
    for value, drawn in (("0", False), ("1", True)):
        no_switch.setenv(progress.ENV, value)
        out = io.StringIO()
        assert list(progress.bar(range(3), desc="fits", file=out)) == [0, 1, 2]
        assert ("fits" in out.getvalue()) is drawn
        assert ("3/3" in out.getvalue()) is drawn


def test_bar_total_and_explicit_disable(no_switch):
    no_switch.setenv(progress.ENV, "1")
    out = io.StringIO()
    with progress.bar(5, desc="steps", file=out) as b:
        b.update(5)
    assert b.total == 5 and "5/5" in out.getvalue()
    out = io.StringIO()
    with progress.bar(5, desc="steps", file=out, disable=True) as b:
        b.update(5)
    assert out.getvalue() == ""


def test_bar_is_plain_text_never_a_widget(no_switch):
    no_switch.setenv(progress.ENV, "1")
    b = progress.bar(2, file=io.StringIO())
    assert type(b).__module__ == "tqdm.std"
    b.close()


@pytest.mark.parametrize("bad", [True, 2.5, object()])
def test_bar_rejects_what_is_neither_iterable_nor_count(bad):
    with pytest.raises(TypeError, match="iterable or a number of steps"):
        progress.bar(bad)
    with pytest.raises(TypeError, match="twice"):
        progress.bar(3, total=3)


_KERNEL = """
import sys, types, warnings
for name in ('ipykernel', 'ipykernel.zmqshell'):
    sys.modules[name] = types.ModuleType(name)
class Shell:
    config = {'IPKernelApp': {}}
import IPython
IPython.get_ipython = lambda: Shell()  # as inside a Jupyter kernel
import importlib.util
assert importlib.util.find_spec('ipywidgets') is None, 'this test needs no ipywidgets'
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter('always')
    %s
    from tqdm.auto import tqdm  # what scvi-tools and scanpy do
print(sum('IProgress' in str(w.message) for w in seen), tqdm.__module__)
"""


@pytest.mark.parametrize(("first", "expected"), [("import helpers", "0"), ("pass", "1")])
def test_tqdm_auto_settled_quietly_in_a_kernel_without_ipywidgets(first, expected):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _KERNEL % first], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    n_warnings, module = out.stdout.split()
    assert n_warnings == expected  # without helpers first, tqdm.auto warns (the control)
    assert module in ("tqdm.std", "tqdm.asyncio")  # the text bar, never a widget
