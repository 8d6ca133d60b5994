"""Per-rank sharding of the loaders and the one-line refusals (in one process: no process group needed)."""

from __future__ import annotations

import pytest
import torch

from reslab.cli import main
from reslab.data.loader import MIN_TRAIN_BATCH, DeviceLoader, EpochBatchSampler, EpochSampler
from reslab.errors import ConfigError
from reslab.training.api import _shard_bundle
from reslab.training.distributed import DistContext

from .conftest import LENET


def _loader(n: int, batch: int) -> DeviceLoader:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return DeviceLoader(images, torch.arange(n), batch_size=batch, mean=[0.0], std=[1.0], shuffle=True, seed=3)


@pytest.mark.parametrize("n", [240, 250, 258])
def test_the_ranks_batches_together_are_the_single_process_batches(n):
    single = [y for _, y in _loader(n, 64)]
    ranks = []
    for r in range(2):
        loader = _loader(n, 32)
        loader.shard(r, 2)
        assert len(loader) == len(single)
        ranks.append([y for _, y in loader])
    for i, whole in enumerate(single):
        assert torch.equal(torch.cat([ranks[0][i], ranks[1][i]]), whole)
        if whole.numel() == 64:  # rank r takes rows r*32 .. r*32+31 of a full global batch
            assert torch.equal(ranks[1][i], whole[32:])


def test_folder_sampler_shards_the_same_global_order():
    whole = [i for i, _ in EpochSampler(100, shuffle=True, seed=1)]
    parts = []
    for r in range(2):
        s = EpochSampler(100, shuffle=True, seed=1)
        s.batch_size, s.rank, s.world_size = 16, r, 2
        parts.append([i for i, _ in s])
        assert len(s) == len(parts[-1])
    merged = []
    for start in range(0, 100, 32):
        share = [len(range(*_rows)) for _rows in [(0, 16), (16, 32)]] if start + 32 <= 100 else [2, 2]
        merged += parts[0][: share[0]] + parts[1][: share[1]]
        parts = [parts[0][share[0] :], parts[1][share[1] :]]
    assert merged == whole


def test_a_last_global_batch_smaller_than_the_world_is_refused_in_one_line():
    class Bundle:
        train, val, test = _loader(65, 32), _loader(8, 8), None

    with pytest.raises(ConfigError, match=r"last global batch has 1 sample\(s\).*fewer than the 2 ranks"):
        _shard_bundle(Bundle, DistContext(rank=0, world_size=2, active=True))


@pytest.mark.parametrize(
    ("flag", "message"),
    [(["--accum-steps", "0"], "accum_steps must be a whole number >= 1"), (["--sync-bn"], "--sync-bn needs CUDA")],
)
def test_bad_flags_are_one_line_errors(tmp_path, capsys, flag, message):
    assert main(["train", *LENET, "--batch-size", "32", *flag, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reslab: error:") and message in err[0]
    assert not (tmp_path / "run").exists()


def test_a_restarted_attempt_does_not_see_the_previous_attempts_keys(monkeypatch):
    """torchrun's workers share the agent's store across restarts; a restarted rank reading the dead rank's
    address from attempt 1 failed with gloo's "connection refused". Attempt 2 gets a namespace of its own."""
    import datetime

    import torch.distributed as dist

    from reslab.training.distributed import _attempt_store

    server = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, timeout=datetime.timedelta(seconds=10))
    server.set("rank_1", "stale address")  # what attempt 1 left behind
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(server.port))
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    assert _attempt_store(0, 2, datetime.timedelta(seconds=10)) == {}  # the first attempt: torch's env://
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    kwargs = _attempt_store(0, 2, datetime.timedelta(seconds=10))
    assert (kwargs["rank"], kwargs["world_size"]) == (0, 2)
    assert not kwargs["store"].check(["rank_1"])
    kwargs["store"].set("rank_1", "fresh")
    assert server.get("reslab/attempt_1/rank_1") == b"fresh" and server.get("rank_1") == b"stale address"


@pytest.mark.parametrize("n", [129, 130, 131])
def test_a_last_global_batch_too_small_for_batchnorm_joins_the_batch_before_on_every_rank(n):
    """A last global batch that would leave some rank fewer than 2 images (BatchNorm) joins the one before:
    the ranks together still see the single-process (merged) batches, every rank the same number of batches,
    each of at least 2 images."""
    single = _loader(n, 64)
    single.min_last_batch = 2 * MIN_TRAIN_BATCH  # one process: the same batches as 2 ranks of 2 at least
    whole = [y for _, y in single]
    ranks = []
    for r in range(2):
        loader = _loader(n, 32)
        loader.min_last_batch = MIN_TRAIN_BATCH
        loader.shard(r, 2)
        assert len(loader) == len(whole) == 2
        ranks.append([y for _, y in loader])
        assert min(y.numel() for y in ranks[-1]) >= 2
    for i, batch in enumerate(whole):
        assert torch.equal(torch.cat([ranks[0][i], ranks[1][i]]), batch)
    # the image-folder sampler shards the same way
    for r in range(2):
        s = EpochSampler(n, shuffle=True, seed=1)
        s.batch_size, s.rank, s.world_size, s.min_rows = 32, r, 2, MIN_TRAIN_BATCH
        sizes = s.batch_sizes()
        assert len(sizes) == 2 and sizes[0] == 32 and sizes[1] >= 2 and sum(sizes) == len(s)
        assert [len(b) for b in EpochBatchSampler(s)] == sizes
