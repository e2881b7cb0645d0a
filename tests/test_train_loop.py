"""The trainer's collaborators, each on its own: the loop state, early stopping, rollback, the
checkpoint cadence and stop requests; and old state.pt files resuming through the loop state."""
import signal

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.errors import Interrupted
from vaekit.train.cadence import Cadence
from vaekit.train.distributed import Dist
from vaekit.train.early_stopping import EarlyStopping
from vaekit.train.loop_state import EpochSums, LoopState
from vaekit.train.rollback import Diverged, Rollback
from vaekit.train.stop import StopRequests

SMALL = dict(hidden=[32], batch_size=256, progress=False)


# -- the loop state --------------------------------------------------------------------------
def test_loop_state_round_trips_and_reads_what_older_versions_saved():
    loop = LoopState(epoch=3, step=42, batch=5, seconds=1.5, best_val=-80.0, best_epoch=2, bad_epochs=1,
                     stopped_early=False, rollbacks=2)
    assert LoopState.from_state(loop.to_state()) == loop
    old = {"epoch": torch.tensor(3), "step": 42, "best_val": None, "best_epoch": 0, "bad_epochs": 0,
           "stopped_early": 0, "optimizer": {}}  # vaekit 0.1: no batch, seconds, rollbacks
    back = LoopState.from_state(old)
    assert back == LoopState(epoch=3, step=42) and type(back.epoch) is int and back.stopped_early is False
    with pytest.raises(KeyError, match="step"):
        LoopState.from_state({"epoch": 1})


def test_end_epoch_and_where():
    loop = LoopState(epoch=1, step=10, batch=4, seconds=2.0)
    assert loop.where() == "after 1 epoch and 4 batches, step 10"
    assert loop.event_fields() == {"epoch": 1, "step": 10, "batch": 4}
    loop.end_epoch()
    assert (loop.epoch, loop.batch, loop.seconds, loop.where()) == (2, 0, 0.0, "after 2 epochs, step 10")
    assert loop.event_fields() == {"epoch": 2, "step": 10}
    assert LoopState(batch=1, step=1).where() == "after 0 epochs and 1 batch, step 1"
    assert LoopState().where() == "the start"


def test_epoch_sums_are_per_example_and_move_between_world_sizes():
    sums = EpochSums()
    sums.add({"elbo": torch.tensor(-2.0)}, 3)
    sums.add({"elbo": torch.tensor(-5.0)}, 1)
    assert sums.n == 4 and float(sums.sums["elbo"]) == -11.0
    saved = [sums.saved(), ({"elbo": torch.tensor(-1.0)}, 2)]  # two ranks
    assert EpochSums.restored(saved, rank=1, world=2, device="cpu").n == 2
    one = EpochSums.restored(saved, rank=0, world=1, device="cpu")  # resumed by one process: rank 0 takes all
    assert one.n == 6 and float(one.sums["elbo"]) == -12.0
    assert EpochSums.restored(saved, rank=1, world=3, device="cpu").n == 0
    assert EpochSums.restored(None, rank=0, world=1, device="cpu").n == 0


def test_an_old_state_file_resumes_to_the_same_bits(tmp_path):
    """A state.pt in vaekit 0.1's shape (one "optimizer", no batch, seconds, rollbacks, sums or per-rank
    random states) resumes and ends where an uninterrupted run does."""
    vaekit.train("digits", out=tmp_path / "straight", epochs=2, seed=3, **SMALL)
    vaekit.train("digits", out=tmp_path / "old", epochs=1, seed=3, **SMALL)
    path = tmp_path / "old" / "state.pt"
    state = torch.load(path, weights_only=True)
    state["optimizer"] = state.pop("optimizers")["main"]
    for key in ("batch", "seconds", "rollbacks", "sums", "rank_rngs"):
        del state[key]
    torch.save(state, path)
    vaekit.train(out=tmp_path / "old", resume=True, epochs=2, progress=False)
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "old" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- early stopping --------------------------------------------------------------------------
@pytest.mark.parametrize("mode, values, best", [("max", [-10, -9, -9.5, -9.2], 2), ("min", [5, 4, 4.5, 4.1], 2)])
def test_early_stopping_tracks_the_best_epoch_and_spends_its_patience(mode, values, best):
    stopping, loop = EarlyStopping("elbo", mode, patience=2), LoopState()
    improved = []
    for v in values:
        loop.end_epoch()
        improved.append(stopping.observe(loop, {"elbo": v}))
        if loop.stopped_early:
            break
    assert improved == [True, True, False, False] and loop.best_epoch == best
    assert loop.stopped_early and loop.bad_epochs == 2 and stopping.exhausted(loop)
    assert loop.best_val == (-values[1] if mode == "max" else values[1])
    assert not EarlyStopping("elbo", mode, patience=3).exhausted(loop)  # a raised --patience goes on
    assert not EarlyStopping("elbo", mode, patience=None).exhausted(LoopState(bad_epochs=99))
    assert stopping.observe(loop, {}) is False  # no validation split: never a best epoch


# -- rollback --------------------------------------------------------------------------------
def test_rollback_lowers_the_rates_until_its_retries_are_spent():
    p = torch.nn.Parameter(torch.zeros(2))
    optimizers = {"main": torch.optim.SGD([p], lr=0.1), "discriminator": torch.optim.SGD([p], lr=0.01)}
    rollback = Rollback(retries=2, lr_factor=0.5)
    assert rollback.lowered(optimizers) == [0.05, 0.005]
    assert not rollback.spent(1) and rollback.spent(2)
    bad = Diverged("the loss became nan or inf", epoch=3, step=40)
    good = LoopState(epoch=2, step=30).to_state()
    assert rollback.retrying(bad, 1, good, optimizers) == (
        "the loss became nan or inf at epoch 3, step 40: back to the last good state (after 2 epochs, step 30) "
        "with the learning "
        "rate lowered to 0.1, 0.01 (retry 1 of 2)")
    assert rollback.give_up(bad, 2, good, optimizers).endswith(
        "after 2 rollbacks, with the learning rate now 0.1, 0.01; try a lower --lr or --grad-clip 1.0. "
        "The last good checkpoint (after 2 epochs, step 30) is kept in the run directory")
    assert rollback.give_up(bad, 0, LoopState().to_state(), optimizers).endswith("Nothing was saved yet")
    rollback.last_good.keep({"w": p.detach()})
    p.data.fill_(7.0)  # training goes on: the kept copy does not change
    assert rollback.last_good.copy()["w"].tolist() == [0.0, 0.0]



def test_one_process_keeps_the_last_good_state_on_disk_not_in_memory(tmp_path):
    """LastGood with a folder: the copy lives in an unnamed temporary file (the folder lists nothing new); a state
    this process just wrote to state.pt is read back from there, and a state.pt replaced since is refused."""
    from vaekit.errors import VaekitError
    from vaekit.train.rollback import LastGood

    p = torch.nn.Parameter(torch.zeros(3))
    last_good = LastGood(tmp_path)
    last_good.keep({**LoopState(epoch=1, step=5).to_state(), "w": p.detach()})
    p.data.fill_(7.0)
    assert last_good.state is None and list(tmp_path.iterdir()) == []
    assert last_good.copy()["w"].tolist() == [0.0, 0.0, 0.0] and last_good.copy()["step"] == 5
    saved = {"state": {**LoopState(epoch=2, step=10).to_state(), "w": p.detach().clone()}}
    last_good.keep(saved["state"], lambda: saved["state"])
    assert last_good.file is None and last_good.copy()["w"].tolist() == [7.0] * 3
    saved["state"] = LoopState(epoch=3, step=15).to_state()  # another run's save over that file
    with pytest.raises(VaekitError, match=r"the file it was saved to now holds another one \(after 3 epochs"):
        last_good.copy()

# -- the checkpoint cadence ------------------------------------------------------------------
def test_the_cadence_saves_every_n_steps_and_reads_the_watch_on_its_own_schedule():
    cadence = Cadence(checkpoint_every=3, watch_every=4)
    plans = [cadence.after(step, lambda: False) for step in range(1, 13)]
    assert [s for s, p in enumerate(plans, 1) if p.save] == [3, 6, 9, 12]
    assert [s for s, p in enumerate(plans, 1) if p.read_watch] == [4, 8, 12]
    assert not any(p.stop for p in plans)
    assert not any(Cadence(None, 4).after(s, lambda: False).save for s in range(1, 20))


def test_a_stop_request_saves_at_once_and_under_torchrun_only_where_the_ranks_agree():
    asked = []

    def ask():
        asked.append(True)
        return True

    plan = Cadence(checkpoint_every=None, watch_every=4).after(1, ask)
    assert plan.stop and plan.save and asked == [True]  # one process: after every step
    asked.clear()
    plan = Cadence(checkpoint_every=None, watch_every=4, world=2).after(3, ask)
    assert not plan.stop and not plan.save and asked == []  # the collective is not entered off-schedule
    assert Cadence(checkpoint_every=None, watch_every=4, world=2).after(4, ask).stop


# -- stop requests ---------------------------------------------------------------------------
def test_stop_requests_name_the_signal_and_the_resume_command():
    stops = StopRequests()
    assert not stops.agreed(Dist())
    with stops.listening():
        signal.raise_signal(signal.SIGTERM)
        assert stops.requested and stops.agreed(Dist()) and stops.name == "SIGTERM"
    message = stops.interruption("after 1 epoch and 2 batches, step 9", "runs/x", world=2)
    assert isinstance(message, Interrupted)
    assert str(message) == ("interrupted by SIGTERM; the run is saved (after 1 epoch and 2 batches, step 9): "
                            "continue with `vaekit train --out runs/x --resume --nproc 2`")
    assert signal.getsignal(signal.SIGTERM) != stops._handle  # the previous handler is back


# -- stepping and validation (holes a mutation audit found) -----------------------------------
def test_grad_clip_bounds_every_groups_update_not_only_mains():
    """AAE's discriminator has an optimizer of its own: --grad-clip bounds its step too (SGD, lr 1:
    a step moves a group's parameters by its clipped gradient norm)."""
    import copy

    from vaekit.app.options import apply_options, base_config
    from vaekit.data import load_data
    from vaekit.models import build_model
    from vaekit.objectives import build_objective
    from vaekit.train.optimizers import step_all
    from vaekit.train.watch import NonFiniteWatch

    cfg = apply_options(base_config(), {"model": "aae", "hidden": [32], "latent_dim": 4},
                        ["model.structure.args.disc_hidden=32"])
    cfg.model.data_shape, cfg.model.num_classes = [1, 8, 8], 10
    torch.manual_seed(0)
    model = build_model(cfg.model)
    x = load_data("digits").train.x[:64]

    def moved(clip):
        m = copy.deepcopy(model)
        groups = m.parameter_groups()
        flat = lambda name: torch.cat([p.detach().flatten() for p in groups[name]])  # noqa: E731
        before = {name: flat(name) for name in groups}
        torch.manual_seed(1)
        losses = build_objective(cfg)(m, x).losses
        step_all({name: torch.optim.SGD(params, lr=1.0) for name, params in groups.items()}, losses,
                 watch=NonFiniteWatch(), dist=Dist(), step=1, grad_clip=clip)
        return {name: float((flat(name) - before[name]).norm()) for name in groups}

    free, clipped = moved(None), moved(0.01)
    assert set(clipped) == {"main", "discriminator"}
    for name in clipped:
        assert free[name] > 0.02, name          # unclipped, the step would be larger than the clip
        assert 0.005 < clipped[name] <= 0.01 + 1e-6, name


class _MeanOfX:
    """An objective whose one term is the batch mean of x: validation must weight it per example."""
    monitor = ("m", "max")

    def __call__(self, model, x, c=None, kl_weight=1.0):
        from vaekit.objectives import LossOutput
        return LossOutput({"main": x.mean()}, {"m": x.mean()})


def test_validation_is_a_mean_over_examples_not_over_batches():
    """600 examples are two batches (512 and 88) of unequal means: their per-example mean is the
    mean of all 600, while a mean of batch means would weight the 88 as much as the 512."""
    from vaekit.data.types import TensorData
    from vaekit.train.validation import validate

    x = torch.cat([torch.zeros(512, 3), torch.ones(88, 3)])
    got = validate(torch.nn.Linear(3, 1), _MeanOfX(), TensorData(x), Dist())
    assert got["m"] == pytest.approx(88 / 600) and got["loss"] == pytest.approx(88 / 600)
