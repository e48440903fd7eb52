"""dream_sr: the DREAM update through diffusers, the data, sampling and metrics, and the paper-scale loaders."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from shared.errors import MissingInputError, ParameterError
from shared.papers.dream_sr import experiments as E


def tiny_batch(seed=0, B=4):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = E.build_unet("tiny").eval()
    sched = E.build_scheduler(1000, 1e-4, 0.02)
    x0, cond, eps = (torch.randn(B, 1, 8, 8, generator=gen) for _ in range(3))
    t = torch.randint(0, 1000, (B,), generator=gen)
    return net, sched, x0, cond, eps, t


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0, 2.0])
def test_dream_pair_equals_the_diffusers_function_exactly(p):
    assert E.pair_max_difference(p=p) == 0.0


def test_a_wrong_lambda_is_detected():
    assert E.pair_max_difference(p=1.0, lam_fn=lambda abar, p: (1 - abar) ** p) > 1e-3


def test_with_a_perfect_estimate_dream_is_standard():
    net, sched, x0, cond, eps, t = tiny_batch()

    class Oracle(torch.nn.Module):  # returns the true eps whatever the input
        def forward(self, x, t):
            return SimpleNamespace(sample=eps)

        def eval(self):
            return self

    oracle = Oracle()
    got = E.training_pair(oracle, x0, cond, t, eps, sched, 1.0)
    std = E.training_pair(oracle, x0, cond, t, eps, sched, None)
    assert torch.equal(got[0], std[0]) and torch.equal(got[1], std[1])


def test_the_dream_pair_still_points_to_the_true_image():
    net, sched, x0, cond, eps, t = tiny_batch()
    xbar, xi = E.training_pair(net, x0, cond, t, eps, sched, 1.0)
    abar = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    recovered = (xbar - (1 - abar).sqrt() * xi) / abar.sqrt()
    assert (recovered - x0).abs().max() < 1e-4 * abar.rsqrt().max()  # exact up to float32 rounding
    assert not torch.allclose(xbar, sched.add_noise(x0, eps, t))  # and it differs from standard


def test_p0_is_pure_rectification_and_none_is_standard():
    abar = E.build_scheduler(1000, 1e-4, 0.02).alphas_cumprod
    assert torch.equal(E.dream_lambda(abar, 0.0), torch.ones_like(abar))
    assert torch.equal(E.dream_lambda(abar, None), torch.zeros_like(abar))
    assert torch.allclose(E.dream_lambda(abar, 2.0), 1 - abar)


def test_the_adapter_concatenates_cond_then_x():
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, x, t):
            seen["x"] = x
            return SimpleNamespace(sample=x[:, :1])

    cond, x = torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)
    E.ConcatCondition(Spy())(x, torch.tensor([3, 4]), cond)
    assert torch.equal(seen["x"][:, 0], cond[:, 0]) and torch.equal(seen["x"][:, 1], x[:, 0])


def test_gamma_conditioning_feeds_sqrt_alpha_bar():
    abar = E.build_scheduler(1000, 1e-4, 0.02).alphas_cumprod
    t = torch.tensor([0, 999])
    assert torch.allclose(E.ConcatCondition(torch.nn.Identity(), abar, "gamma").level(t), abar[t].sqrt())
    with pytest.raises(ParameterError, match="noise_conditioning"):
        E.ConcatCondition(torch.nn.Identity(), abar, "sigma")


def test_degrade_keeps_a_constant_image():
    hr = torch.full((1, 1, 28, 28), 0.3)
    lr, cond = E.degrade(hr, 4)
    assert lr.shape == (1, 1, 7, 7) and torch.allclose(lr, hr[..., :7, :7]) and torch.allclose(cond, hr, atol=1e-6)


def test_psnr_of_a_known_mse_is_exact():
    hr = torch.zeros(2, 1, 16, 16) - 1  # 0 on [0, 1]
    pred = hr + 0.25  # 0.125 on [0, 1] (exact in float32): MSE 1/64
    psnr, ssim = E.psnr_ssim(pred, hr)
    assert psnr == pytest.approx(10 * math.log10(64), abs=1e-12)
    assert E.psnr_ssim(hr, hr)[1] == pytest.approx(1.0)


def test_v_prediction_raises_naming_prediction_type():
    net, _, x0, cond, eps, t = tiny_batch()
    sched = E.build_scheduler(1000, 1e-4, 0.02, prediction_type="v_prediction")
    with pytest.raises(ParameterError, match="prediction_type"):
        E.training_pair(net, x0, cond, t, eps, sched, 1.0)


def test_mnist_data_has_a_fixed_test_set():
    a, b = E.mnist_sr_data(100, 8), E.mnist_sr_data(200, 8)
    assert a["train_hr"].shape == (100, 1, 28, 28) and a["test_cond"].shape == (8, 1, 28, 28)
    assert torch.equal(a["test_hr"], b["test_hr"])
    assert a["train_hr"].min() >= -1 and a["train_hr"].max() <= 1


def small_run(arms=("standard", "dream"), n_jobs=1, **over):
    data = E.mnist_sr_data(64, 4)
    kw = dict(p=1.0, unet="tiny", dropout=0.0, train_timesteps=100, beta_start=1e-4, beta_end=0.02,
              noise_conditioning="t", loss="mse", iters=4, batch=4, lr=1e-3, eval_iters=[2, 4], sweep_iters=[2, 4],
              sweep_Ks=[2, 3], eval_K=2, sampler="ddim", seed=0)
    kw.update(over)
    return data, E.run_arms(data, n_jobs=n_jobs, arms=arms, **kw)


def test_both_arms_train_and_evaluate_with_finite_values():
    data, run = small_run()
    ev, hist = run["evals"], run["history"]
    assert set(ev.arm) == {"standard", "dream"} and len(hist) == 8
    assert np.isfinite(ev[["psnr", "ssim"]].to_numpy()).all() and np.isfinite(hist.loss).all()
    assert run["grid"]["dream"][3].shape == (4, 1, 28, 28)
    assert sorted(ev[(ev.arm == "dream") & (ev.iteration == 4)].K) == [2, 3]


def test_runs_are_deterministic_and_independent_of_n_jobs():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers of n_jobs = 2 run one thread each
    try:
        _, a = small_run(arms=("dream",), iters=2, eval_iters=[2], sweep_iters=[2])
    finally:
        torch.set_num_threads(threads)
    _, b = small_run(arms=("dream",), iters=2, eval_iters=[2], sweep_iters=[2], n_jobs=2)
    assert a["history"].loss.tolist() == b["history"].loss.tolist()
    assert a["evals"].psnr.tolist() == b["evals"].psnr.tolist()


def test_the_last_iteration_sweeps_sweep_Ks_and_earlier_sweeps_early_Ks():
    _, run = small_run(arms=("standard",), sweep_Ks=[2, 3, 4], early_Ks=[2, 3], eval_K=2)
    ev = run["evals"]
    assert sorted(ev[ev.iteration == 4].K) == [2, 3, 4] and sorted(ev[ev.iteration == 2].K) == [2, 3]
    base = dict(hr_size=28, lr_size=7, dataset="mnist", unet="mnist_28", iters=10, sweep_iters=[5, 10],
                eval_iters=[5], eval_K=5, sweep_Ks=[2, 5])
    with pytest.raises(ParameterError, match="early_Ks"):
        E.check_knobs(SimpleNamespace(**base, early_Ks=[2, 50]))


def test_ema_changes_what_is_evaluated_not_what_is_trained():
    _, raw = small_run(arms=("dream",))
    _, ema = small_run(arms=("dream",), eval_ema=0.9)
    assert raw["history"].loss.tolist() == ema["history"].loss.tolist()
    assert raw["evals"].psnr.tolist() != ema["evals"].psnr.tolist()
    with pytest.raises(ParameterError, match="eval_ema"):
        small_run(arms=("dream",), eval_ema=1.5)


def test_averaged_weights_hold_the_ema_inside_the_block_only():
    net = E.build_unet("tiny")
    ema = E.weight_average(net, 0.5)
    before = [p.detach().clone() for p in net.parameters()]

    def shift():
        with torch.no_grad():
            for p in net.parameters():
                p.add_(1.0)

    shift()
    ema.step(net.parameters())  # diffusers' first step copies the weights: the average is before + 1
    shift()
    trained = [p.detach().clone() for p in net.parameters()]
    with E.averaged_weights(net, ema):
        inside = [p.detach().clone() for p in net.parameters()]
    assert all(torch.allclose(i, b + 1.0) for i, b in zip(inside, before))
    assert all(torch.equal(p, t) for p, t in zip(net.parameters(), trained))
    assert E.weight_average(net, 0.0) is None


def test_l1_ddpm_gamma_dropout_path_runs():
    _, run = small_run(arms=("dream",), loss="l1", sampler="ddpm", noise_conditioning="gamma", dropout=0.2,
                       iters=2, eval_iters=[2], sweep_iters=[2])
    assert np.isfinite(run["evals"].psnr).all()


def test_bad_knobs_raise_naming_them():
    with pytest.raises(ParameterError, match="arm"):
        small_run(arms=("other",))
    with pytest.raises(ParameterError, match="loss"):
        small_run(loss="huber")
    with pytest.raises(ParameterError, match="unet"):
        E.build_unet("big")
    with pytest.raises(ParameterError, match="sampler"):
        E.super_resolve(E.build_unet("tiny"), torch.zeros(1, 1, 8, 8), {"train_timesteps": 10, "beta_start": 1e-4,
                        "beta_end": 0.02}, 2, sampler="euler")
    base = dict(hr_size=28, lr_size=7, dataset="mnist", unet="mnist_28", iters=10, sweep_iters=[5, 10],
                eval_iters=[5], eval_K=5, sweep_Ks=[2, 5], early_Ks=None)
    E.check_knobs(SimpleNamespace(**base))
    for change, name in (({"lr_size": 5}, "lr_size"), ({"sweep_iters": [5]}, "sweep_iters"),
                         ({"eval_K": 3}, "eval_K"), ({"eval_iters": [11]}, "sweep_iters")):
        with pytest.raises(ParameterError, match=name):
            E.check_knobs(SimpleNamespace(**{**base, **change}))


# ---------------------------------------------------------------- paper scale on tiny fakes
def write_faces(folder, n, size=(40, 30)):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    return folder


def test_face_folders_load_as_sr3_pairs(tmp_path):
    ffhq, celeb = write_faces(tmp_path / "ffhq", 5), write_faces(tmp_path / "celebahq" / "hr_128", 3, (128, 128))
    data = E.load_data("faces", 0, 2, 32, 4, ffhq, tmp_path / "celebahq")
    assert data["train_hr"].shape == (5, 3, 32, 32) and data["test_hr"].shape == (2, 3, 32, 32)
    assert data["train_lr"].shape == (5, 3, 4, 4) and data["test_cond"].shape == (2, 3, 32, 32)
    assert data["train_hr"].min() >= -1 and data["train_hr"].max() <= 1
    assert E.load_data("faces", 3, 2, 32, 4, ffhq, celeb)["train_hr"].shape[0] == 3


def test_face_training_runs_on_fakes(tmp_path):
    ffhq, celeb = write_faces(tmp_path / "ffhq", 4), write_faces(tmp_path / "celeb", 2)
    data = E.load_data("faces", 0, 2, 16, 4, ffhq, celeb)
    run = E.run_arms(data, p=1.0, unet="tiny", dropout=0.2, train_timesteps=50, beta_start=1e-6, beta_end=1e-2,
                     noise_conditioning="gamma", loss="l1", iters=2, batch=2, lr=1e-4, eval_iters=[2],
                     sweep_iters=[2], sweep_Ks=[2], eval_K=2, sampler="ddpm", seed=0)
    assert np.isfinite(run["evals"].psnr).all() and run["grid"]["dream"][2].shape == (2, 3, 16, 16)


def test_missing_or_short_folders_name_the_parameter(tmp_path):
    celeb = write_faces(tmp_path / "celeb", 2)
    with pytest.raises(MissingInputError, match="ffhq_dir"):
        E.load_data("faces", 0, 2, 16, 4, None, celeb)
    with pytest.raises(MissingInputError, match="ffhq_dir"):
        E.load_data("faces", 0, 2, 16, 4, tmp_path / "nowhere", celeb)
    with pytest.raises(MissingInputError, match="celebahq_dir.*found 2"):
        E.load_data("faces", 0, 100, 16, 4, celeb, celeb)
    with pytest.raises(MissingInputError, match="celebahq_dir"):
        E.load_data("faces", 0, 2, 16, 4, celeb, None)
    with pytest.raises(ParameterError, match="dataset"):
        E.load_data("cifar", 0, 2, 16, 4)


def test_the_sr3_unet_is_the_official_size():
    net = E.build_unet("sr3_128", channels=3, dropout=0.2)
    assert sum(p.numel() for p in net.parameters()) == 99_475_779
    assert E.build_unet("mnist_28").num_parameters() == 267_457
