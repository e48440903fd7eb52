"""dream_sr: conditional diffusion super-resolution trained the standard way or with DREAM (diffusers).

The diffusion pieces are diffusers' (``UNet2DModel``, ``DDPMScheduler``/``DDIMScheduler`` and
``training_utils.compute_dream_and_update_latents``); this module only wires them to SR3-style
conditioning (the bicubic upsample of the low-resolution image, concatenated channel-wise), the data
and the evaluation. diffusers is imported inside the functions (it takes seconds to import).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from shared.errors import MissingInputError, ParameterError
from shared.parallel import parallel_map

ARMS = {"standard": None, "dream": "p"}  # the DREAM arm uses the knob p; standard is p = None (p -> inf)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
UNETS = ("mnist_28", "sr3_128", "tiny")


# ---------------------------------------------------------------- data
def degrade(hr: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, condition) of HR images in [-1, 1]: area-downsample by ``factor``, bicubic-upsample back, clamp."""
    lr = F.avg_pool2d(hr, factor)
    cond = F.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1)
    return lr, cond


def mnist_sr_data(n_train: int, n_test: int, lr_size: int = 7) -> dict[str, torch.Tensor]:
    """MNIST-5k, shuffled with its own generator (seed 0, the same test set for every seed), HR in [-1, 1].

    Train on the first ``n_train`` images, test on the ``n_test`` after index 4,500 (or after the
    training images when ``n_train`` > 4,500).
    """
    from shared.data import load_mnist_subset

    X, _ = load_mnist_subset()
    order = np.random.default_rng(0).permutation(len(X))
    hr = torch.from_numpy(X[order].reshape(-1, 1, 28, 28)) * 2 - 1
    start = max(4500, n_train)
    if start + n_test > len(hr):
        raise ParameterError("n_test", f"{n_train} training and {n_test} test images exceed MNIST-5k's 5,000")
    if 28 % lr_size:
        raise ParameterError("lr_size", "must divide 28 for MNIST", ["7", "14", "4", "2"])
    out = {"train_hr": hr[:n_train], "test_hr": hr[start:start + n_test]}
    out["train_lr"], out["train_cond"] = degrade(out["train_hr"], 28 // lr_size)
    out["test_lr"], out["test_cond"] = degrade(out["test_hr"], 28 // lr_size)
    return out


def image_files(param: str, folder, n_min: int, what: str) -> list[Path]:
    """The image files under ``folder`` (sorted, recursive), at least ``n_min`` of them, else MissingInputError."""
    expected = f"{what}: a folder of image files ({', '.join(IMAGE_SUFFIXES)}), at least {n_min} of them"
    if not folder:
        raise MissingInputError(param, None, expected)
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise MissingInputError(param, folder, expected)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < n_min:
        raise MissingInputError(param, folder, expected + f" (found {len(files)})")
    return files


def sr3_pair(path: Path, hr_size: int, lr_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(HR, LR, condition) uint8 HWC arrays as SR3's prepare_data.py makes them (centre crop, PIL bicubic)."""
    from PIL import Image

    from shared.errors import reading

    with reading("image", path, "an image"):
        img = Image.open(path).convert("RGB")
    w, h = img.size
    side = min(w, h)
    img = img.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    hr = img.resize((hr_size, hr_size), Image.BICUBIC)
    lr = hr.resize((lr_size, lr_size), Image.BICUBIC)
    cond = lr.resize((hr_size, hr_size), Image.BICUBIC)
    return np.asarray(hr), np.asarray(lr), np.asarray(cond)


def _to_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


def face_sr_data(ffhq_dir, celebahq_dir, n_train: int, n_test: int, hr_size: int = 128,
                 lr_size: int = 16) -> dict[str, torch.Tensor]:
    """SR3's face setting: train on FFHQ images (``n_train``, 0 = all), test on the first ``n_test`` CelebA-HQ images."""
    train = image_files("ffhq_dir", ffhq_dir, max(n_train, 1), "FFHQ images (e.g. images1024x1024/ or a resized copy)")
    test = image_files("celebahq_dir", celebahq_dir, n_test,
                       "CelebA-HQ validation images (e.g. the 100 images of SR3's celebahq_16_128 validation zip, hr_128/)")
    train = train[:n_train] if n_train else train
    out = {}
    for split, files in (("train", train), ("test", test[:n_test])):
        hr, lr, cond = zip(*(sr3_pair(f, hr_size, lr_size) for f in files))
        out[f"{split}_hr"], out[f"{split}_lr"], out[f"{split}_cond"] = _to_tensor(hr), _to_tensor(lr), _to_tensor(cond)
    return out


def load_data(dataset: str, n_train: int, n_test: int, hr_size: int, lr_size: int,
              ffhq_dir=None, celebahq_dir=None) -> dict[str, torch.Tensor]:
    if dataset == "mnist":
        return mnist_sr_data(n_train, n_test, lr_size)
    if dataset == "faces":
        return face_sr_data(ffhq_dir, celebahq_dir, n_train, n_test, hr_size, lr_size)
    raise ParameterError("dataset", f"unknown value {dataset!r}", ["mnist", "faces"])


# ---------------------------------------------------------------- model and the DREAM update
def build_unet(kind: str, channels: int = 1, dropout: float = 0.0):
    """The U-Net: ``mnist_28`` (267k parameters), ``sr3_128`` (SR3's 16->128 faces), ``tiny`` (tests)."""
    from diffusers import UNet2DModel

    if kind == "mnist_28":
        return UNet2DModel(sample_size=28, in_channels=2 * channels, out_channels=channels,
                           block_out_channels=(16, 32, 32), layers_per_block=1, down_block_types=("DownBlock2D",) * 3,
                           up_block_types=("UpBlock2D",) * 3, norm_num_groups=8, dropout=dropout)
    if kind == "sr3_128":  # SR3: inner 64, multipliers [1,2,4,8,8], attention at 16x16, 2 res blocks, GroupNorm 32
        return UNet2DModel(sample_size=128, in_channels=2 * channels, out_channels=channels,
                           block_out_channels=(64, 128, 256, 512, 512), layers_per_block=2, dropout=dropout,
                           norm_num_groups=32,
                           down_block_types=("DownBlock2D",) * 3 + ("AttnDownBlock2D", "DownBlock2D"),
                           up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 3)
    if kind == "tiny":
        return UNet2DModel(in_channels=2 * channels, out_channels=channels, block_out_channels=(8, 16),
                           layers_per_block=1, down_block_types=("DownBlock2D",) * 2,
                           up_block_types=("UpBlock2D",) * 2, norm_num_groups=8, dropout=dropout)
    raise ParameterError("unet", f"unknown value {kind!r}", UNETS)


def build_scheduler(train_timesteps: int, beta_start: float, beta_end: float, prediction_type: str = "epsilon"):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=train_timesteps, beta_start=beta_start, beta_end=beta_end,
                         beta_schedule="linear", prediction_type=prediction_type)


class ConcatCondition(torch.nn.Module):
    """SR3 conditioning for diffusers' DREAM function: ``forward(x, t, cond) = net([cond, x], t)``.

    ``noise_conditioning="gamma"`` feeds SR3's continuous noise level gamma = sqrt(alpha_bar_t) instead of t.
    """

    def __init__(self, net, alphas_cumprod: torch.Tensor | None = None, noise_conditioning: str = "t"):
        super().__init__()
        if noise_conditioning not in ("t", "gamma"):
            raise ParameterError("noise_conditioning", f"unknown value {noise_conditioning!r}", ["t", "gamma"])
        self.net, self.noise_conditioning = net, noise_conditioning
        self.alphas_cumprod = alphas_cumprod

    def level(self, t: torch.Tensor) -> torch.Tensor:
        if self.noise_conditioning == "t":
            return t
        return self.alphas_cumprod.to(t.device)[t.long()].sqrt().float()

    def forward(self, x, t, cond):
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        return self.net(torch.cat([cond, x], 1), self.level(t))


def dream_lambda(alphas_cumprod: torch.Tensor, p: float | None) -> torch.Tensor:
    """lambda_t = sqrt(1 - alpha_bar_t) ** p (0 for standard training, p = None)."""
    if p is None:
        return torch.zeros_like(alphas_cumprod)
    return (1 - alphas_cumprod).sqrt() ** p


def training_pair(net, x0, cond, t, eps, scheduler, p: float | None, noise_conditioning: str = "t"):
    """(network input, target) for standard training (``p=None``) or DREAM with detail preservation ``p``.

    DREAM is diffusers' ``compute_dream_and_update_latents`` (its estimate is taken in eval mode, as the
    official code does, which matters with dropout).
    """
    from diffusers.training_utils import compute_dream_and_update_latents

    xt = scheduler.add_noise(x0, eps, t)
    if p is None:
        return xt, eps
    if scheduler.config.prediction_type != "epsilon":
        raise ParameterError("prediction_type", f"DREAM is implemented for epsilon prediction only, "
                             f"not {scheduler.config.prediction_type!r}", ["epsilon"])
    was_training = net.training
    net.eval()
    try:
        return compute_dream_and_update_latents(
            ConcatCondition(net, scheduler.alphas_cumprod, noise_conditioning), scheduler, t, eps, xt,
            eps.clone(), cond, dream_detail_preservation=p)
    finally:
        net.train(was_training)


def dream_pair_reference(net, x0, cond, t, eps, scheduler, p: float, lam_fn=dream_lambda):
    """The paper's three lines written out (the reference that diffusers' function must equal)."""
    abar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    s1 = (1 - abar).sqrt()
    xt = abar.sqrt() * x0 + s1 * eps
    with torch.no_grad():
        eps_hat = net(torch.cat([cond, xt], 1), t).sample
    delta = lam_fn(abar, p) * (eps - eps_hat)
    return xt + s1 * delta, eps + delta


def pair_max_difference(p: float = 1.0, seed: int = 0, lam_fn=dream_lambda) -> float:
    """max |diffusers' DREAM pair - the paper's three lines| on a tiny U-Net and batch (0.0 when equal)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = build_unet("tiny").eval()
    sched = build_scheduler(1000, 1e-4, 0.02)
    x0, cond, eps = (torch.randn(4, 1, 8, 8, generator=gen) for _ in range(3))
    t = torch.randint(0, 1000, (4,), generator=gen)
    got = training_pair(net, x0, cond, t, eps, sched, p)
    ref = dream_pair_reference(net, x0, cond, t, eps, sched, p, lam_fn)
    return float(max((a - b).abs().max() for a, b in zip(got, ref)))


# ---------------------------------------------------------------- sampling and metrics
@torch.no_grad()
def super_resolve(net, cond: torch.Tensor, sched_cfg: dict, K: int, sampler: str = "ddim",
                  noise_conditioning: str = "t", batch: int = 64, seed: int = 123) -> torch.Tensor:
    """Sample HR images from the conditions with ``K`` steps (DDIM eta = 0, clipped; or re-spaced ancestral DDPM)."""
    from diffusers import DDIMScheduler, DDPMScheduler

    kw = dict(num_train_timesteps=sched_cfg["train_timesteps"], beta_start=sched_cfg["beta_start"],
              beta_end=sched_cfg["beta_end"], beta_schedule="linear", clip_sample=True)
    if sampler == "ddim":
        sched = DDIMScheduler(**kw)
    elif sampler == "ddpm":
        sched = DDPMScheduler(**kw)
    else:
        raise ParameterError("sampler", f"unknown value {sampler!r}", ["ddim", "ddpm"])
    sched.set_timesteps(K)
    model = ConcatCondition(net, sched.alphas_cumprod, noise_conditioning)
    was_training = net.training
    net.eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cond.shape, generator=gen).to(cond.device)
    out = []
    for start in range(0, len(cond), batch):
        xb, cb = x[start:start + batch], cond[start:start + batch]
        for t in sched.timesteps:
            eps = model(xb, t.to(cond.device), cb).sample
            step_kw = {"eta": 0.0} if sampler == "ddim" else {"generator": gen}
            xb = sched.step(eps, t, xb, **step_kw).prev_sample
        out.append(xb.clamp(-1, 1))
    net.train(was_training)
    return torch.cat(out)


def psnr_ssim(pred: torch.Tensor, hr: torch.Tensor) -> tuple[float, float]:
    """Mean per-image PSNR (dB) and SSIM (win 7) of images in [-1, 1], on [0, 1] with data_range 1 (scikit-image)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = ((pred.detach().cpu().double() + 1) / 2).clamp(0, 1).numpy()
    b = ((hr.detach().cpu().double() + 1) / 2).clamp(0, 1).numpy()
    ps, ss = [], []
    for x, y in zip(a, b):
        ps.append(peak_signal_noise_ratio(y, x, data_range=1.0))
        ss.append(structural_similarity(y, x, data_range=1.0, win_size=7, channel_axis=0))
    return float(np.mean(ps)), float(np.mean(ss))


# ---------------------------------------------------------------- one arm
def weight_average(net, decay: float):
    """diffusers' ``EMAModel`` of ``net``'s weights with ``decay`` (None when ``decay`` is 0: no average)."""
    if not decay:
        return None
    if not 0 < decay < 1:
        raise ParameterError("eval_ema", f"must be 0 (off) or a decay in (0, 1), got {decay}")
    from diffusers.training_utils import EMAModel

    return EMAModel(net.parameters(), decay=decay)


@contextmanager
def averaged_weights(net, ema):
    """Inside the block ``net`` holds the averaged weights of ``ema`` (unchanged when ``ema`` is None)."""
    if ema is None:
        yield net
        return
    ema.store(net.parameters())
    ema.copy_to(net.parameters())
    try:
        yield net
    finally:
        ema.restore(net.parameters())


def train_arm(arm: str, data: dict, *, p: float, unet: str, dropout: float, train_timesteps: int,
              beta_start: float, beta_end: float, noise_conditioning: str, loss: str, iters: int, batch: int,
              lr: float, eval_iters: list, sweep_iters: list, sweep_Ks: list, eval_K: int, sampler: str,
              seed: int, early_Ks: list | None = None, eval_ema: float = 0.0, device: str = "cpu",
              n_grid: int = 8) -> dict:
    """Train one arm (``standard`` or ``dream``) and evaluate it; the same seed gives both arms the same init and batches.

    The last iteration is evaluated at every K of ``sweep_Ks``, earlier ``sweep_iters`` at every K of
    ``early_Ks`` (default: ``sweep_Ks``), other ``eval_iters`` at ``eval_K``. ``eval_ema`` > 0 evaluates
    an exponential moving average of the weights (diffusers' ``EMAModel``: its first step copies the
    weights, then step s averages with decay min(``eval_ema``, (1 + s) / (10 + s))); 0 evaluates the
    weights themselves. Returns ``history`` (iteration, loss, train_s), ``evals``
    (iteration, K, psnr, ssim, train_s) and ``grid`` (K -> the first ``n_grid`` test outputs at the last iteration).
    """
    if arm not in ARMS:
        raise ParameterError("arm", f"unknown value {arm!r}", list(ARMS))
    if loss not in ("mse", "l1"):
        raise ParameterError("loss", f"unknown value {loss!r}", ["mse", "l1"])
    torch.manual_seed(seed)
    arm_p = None if arm == "standard" else p
    channels = data["train_hr"].shape[1]
    net = build_unet(unet, channels, dropout).to(device)
    sched = build_scheduler(train_timesteps, beta_start, beta_end)
    sched_cfg = {"train_timesteps": train_timesteps, "beta_start": beta_start, "beta_end": beta_end}
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ema = weight_average(net, eval_ema)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = F.mse_loss if loss == "mse" else F.l1_loss
    test_cond, test_hr = data["test_cond"].to(device), data["test_hr"]
    eval_points = {int(i) for i in eval_iters} | {int(i) for i in sweep_iters}
    history, evals, grid, train_s = [], [], {}, 0.0
    for it in range(1, iters + 1):
        tic = time.perf_counter()
        idx = torch.randint(0, len(data["train_hr"]), (batch,), generator=gen)
        x0, cond = data["train_hr"][idx].to(device), data["train_cond"][idx].to(device)
        eps = torch.randn(x0.shape, generator=gen).to(device)
        t = torch.randint(0, train_timesteps, (batch,), generator=gen).to(device)
        x_in, target = training_pair(net, x0, cond, t, eps, sched, arm_p, noise_conditioning)
        pred = ConcatCondition(net, sched.alphas_cumprod, noise_conditioning)(x_in, t, cond).sample
        value = loss_fn(pred, target)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        if ema is not None:
            ema.step(net.parameters())
        train_s += time.perf_counter() - tic
        history.append({"iteration": it, "loss": value.item(), "train_s": train_s})
        if it in eval_points:
            Ks = sweep_Ks if it == iters else (early_Ks or sweep_Ks) if it in sweep_iters else []
            Ks = sorted(set(Ks) | {eval_K})
            with averaged_weights(net, ema):
                for K in Ks:
                    out = super_resolve(net, test_cond, sched_cfg, K, sampler, noise_conditioning)
                    psnr, ssim = psnr_ssim(out, test_hr)
                    evals.append({"iteration": it, "K": K, "psnr": psnr, "ssim": ssim, "train_s": train_s})
                    if it == iters:
                        grid[K] = out[:n_grid].cpu()
    frame = lambda rows: pd.DataFrame(rows).assign(arm=arm)  # noqa: E731
    return {"history": frame(history), "evals": frame(evals), "grid": grid}


def run_arms(data: dict, n_jobs: int = 1, arms=tuple(ARMS), **kw) -> dict:
    """Both arms with the same budget, one process each when ``n_jobs`` > 1 (results do not depend on n_jobs)."""
    outs = parallel_map(partial(train_arm, data=data, **kw), [(a,) for a in arms], n_jobs)
    return {"history": pd.concat([o["history"] for o in outs], ignore_index=True),
            "evals": pd.concat([o["evals"] for o in outs], ignore_index=True),
            "grid": {a: o["grid"] for a, o in zip(arms, outs)}}


def bicubic_scores(data: dict) -> tuple[float, float]:
    """PSNR and SSIM of the bicubic condition itself."""
    return psnr_ssim(data["test_cond"], data["test_hr"])


def cost_per_iteration(history: pd.DataFrame) -> pd.Series:
    """Training seconds per iteration of each arm."""
    last = history.sort_values("iteration").groupby("arm").last()
    return last.train_s / last.iteration


def check_knobs(cfg) -> None:
    """Relations between knobs that the preset limits cannot express (ParameterError naming the knob)."""
    if cfg.hr_size % cfg.lr_size:
        raise ParameterError("lr_size", f"must divide hr_size = {cfg.hr_size}")
    if cfg.dataset == "mnist" and (cfg.hr_size != 28 or cfg.unet == "sr3_128"):
        raise ParameterError("hr_size", "MNIST is 28 px, trained with unet mnist_28 or tiny", ["28"])
    if not cfg.sweep_iters or any(not 1 <= int(i) <= cfg.iters for i in list(cfg.sweep_iters) + list(cfg.eval_iters)):
        raise ParameterError("sweep_iters", f"needs iterations within 1..iters = {cfg.iters}")
    if cfg.iters not in cfg.sweep_iters:
        raise ParameterError("sweep_iters", f"must include the last iteration (iters = {cfg.iters})")
    if cfg.eval_K not in cfg.sweep_Ks:
        raise ParameterError("eval_K", f"must be one of sweep_Ks = {cfg.sweep_Ks}", cfg.sweep_Ks)
    if cfg.early_Ks is not None and not set(cfg.early_Ks) <= set(cfg.sweep_Ks):
        raise ParameterError("early_Ks", f"must be a subset of sweep_Ks = {cfg.sweep_Ks}", cfg.sweep_Ks)


def arm_settings(cfg) -> dict:
    """The keyword arguments of ``train_arm``/``run_arms`` from a notebook configuration."""
    keys = ("p", "unet", "dropout", "train_timesteps", "beta_start", "beta_end", "noise_conditioning", "loss",
            "iters", "batch", "lr", "eval_iters", "sweep_iters", "sweep_Ks", "early_Ks", "eval_K", "sampler", "seed",
            "eval_ema")
    return {**{k: getattr(cfg, k) for k in keys}, "device": str(cfg.device)}
