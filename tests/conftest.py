"""Suite-wide test settings."""

from __future__ import annotations

import os

import pytest
import torch

# ``amp`` / ``channels_last: auto`` (the defaults) pick bf16 and channels-last on the CPU where a timing probe
# finds them faster: the suite's figures would depend on the machine and on timing. Every run of the suite --
# session fixtures and subprocesses included -- sees a CPU without native bf16 and does not probe (fp32
# NCHW, as before ``auto``); tests/training/test_precision.py sets the flags and probe results it tests.
os.environ["RESLAB_CPU_FLAGS"] = ""
os.environ["RESLAB_PROBE"] = "0"


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread for the whole suite (restored afterwards).

    The tests' workloads are small; on two-core machines shared with other processes, torch's
    two-thread pool made them 3-5x (small ops up to 1000x) slower, and one thread is as fast alone.
    """
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(autouse=True)
def array_cache_in_tmp(tmp_path_factory, monkeypatch):
    """Folder data sets of small images go through the array cache: keep it out of the user's home
    (subprocesses inherit the variable)."""
    monkeypatch.setenv("RESLAB_CACHE_DIR", str(tmp_path_factory.mktemp("array-cache")))


@pytest.fixture(autouse=True)
def weights_caches_in_tmp(tmp_path_factory, monkeypatch):
    """Published weights are looked for in reslab's and torch.hub's caches: point both at empty folders so no
    test reads or writes the user's ~/.cache (subprocesses inherit the variables)."""
    monkeypatch.setenv("RESLAB_HOME", str(tmp_path_factory.mktemp("reslab-home")))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
