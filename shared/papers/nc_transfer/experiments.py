"""nc_transfer: pre-training variants, linear probes with downstream NC1, and fine-tuning methods (LP, Layer-FT, SCL-FT, Full-FT).

cpu/smoke: MNIST-5k, source digits 0-4, downstream digits 5-9, the toolkit MLP 784-512-512-128.
paper: CIFAR-100 -> CIFAR-10 with the toolkit's CIFAR ResNet18, and a ResNet18 checkpoint fine-tuned
on a local ImageFolder tree. Training uses ``shared.toolkit.train.train_classifier``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from shared.errors import MissingInputError, ParameterError, reading
from shared.progress import progress
from shared.parallel import parallel_map
from shared.toolkit.models import create_model
from shared.toolkit.neural_collapse import nc1
from shared.toolkit.probe import capture, layer_nc1, linear_probe
from shared.toolkit.train import TrainSettings, predict, train_classifier

Pair = tuple[torch.Tensor, torch.Tensor]
K = 5  # source and downstream classes at cpu scale

# name -> (epochs factor, weight decay or None = the default, label smoothing, projection head, augmentation)
VARIANTS: dict[str, dict] = {
    "random": {"epochs": 0},
    "ce_3ep": {"epochs": 3},
    "ce": {},
    "ce_wd5e-3": {"wd": 5e-3},
    "ce_wd2e-2": {"wd": 2e-2},
    "ce_ls0.3": {"ls": 0.3},
    "ce_head": {"head": True},
    "ce_aug": {"aug": True},
    "ce_head_aug": {"head": True, "aug": True},
}
METHODS = ("lp", "layer", "scl", "full")


def check_names(param: str, names, allowed) -> list[str]:
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ParameterError(param, f"unknown names {unknown}", list(allowed))
    return list(names)


# ---------------------------------------------------------------- data
@dataclass(frozen=True)
class Transfer:
    """Source (x, y) and downstream pool (x, y), labels 0..K-1; ``shape`` of one image."""

    source: Pair
    downstream: Pair
    source_classes: int
    downstream_classes: int
    shape: tuple[int, ...]


def mnist_transfer(split_seed: int = 0) -> Transfer:
    """MNIST-5k: 400/100 per class split (seed 0); source = train digits 0-4, downstream = digits 5-9 of both splits."""
    from shared.data import load_mnist_subset, stratified_split

    X, y = load_mnist_subset()
    train, test = stratified_split(y, 400, 100, split_seed)
    mean, std = X[train].mean(), X[train].std()
    X = (X - mean) / std
    src = train[y[train] < 5]
    down = np.concatenate([train[y[train] >= 5], test[y[test] >= 5]])
    t = lambda idx, shift: (torch.as_tensor(X[idx]), torch.as_tensor(y[idx] - shift))  # noqa: E731
    return Transfer(t(src, 0), t(down, 5), 5, 5, (784,))


def cifar_transfer(source_dir: str | None, downstream_dir: str | None) -> Transfer:
    """CIFAR-100 training set (``source_dir``) as source, CIFAR-10 train + test (``downstream_dir``) as downstream pool."""
    from shared.toolkit.cifar import load_cifar, normalize

    src = load_cifar(source_dir, "cifar100", param="source_dir")
    down = load_cifar(downstream_dir, "cifar10", param="downstream_dir")
    xd = np.concatenate([down.x_train, down.x_test])
    yd = np.concatenate([down.y_train, down.y_test])
    return Transfer((normalize(src.x_train), torch.as_tensor(src.y_train)), (normalize(xd), torch.as_tensor(yd)),
                    100, 10, (3, 32, 32))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_imagefolder(root: str | Path | None, image_size: int, param: str = "downstream_imagefolder") -> tuple[Pair, Pair, list[str]]:
    """``root/train/<class>/*.png|jpg`` and ``root/test/<class>/*``: RGB, resized to ``image_size``, CIFAR-normalised."""
    from PIL import Image

    from shared.toolkit.cifar import normalize

    expected = "an image folder with train/<class>/*.png|jpg and test/<class>/*.png|jpg (the same class folders)"
    root = Path(root).expanduser() if root else None
    if root is None or not (root / "train").is_dir() or not (root / "test").is_dir():
        raise MissingInputError(param, root, expected)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise MissingInputError(param, root, expected + " (no class folder under train/)")
    splits = []
    for split in ("train", "test"):
        xs, ys = [], []
        for k, name in enumerate(classes):
            files = sorted(p for p in (root / split / name).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise MissingInputError(param, root / split / name, expected + f" (no image in {split}/{name})")
            for path in files:
                with reading(param, path, "a PNG or JPEG image"), Image.open(path) as img:
                    arr = np.asarray(img.convert("RGB").resize((image_size, image_size), Image.BILINEAR))
                xs.append(arr.transpose(2, 0, 1))
                ys.append(k)
        splits.append((normalize(np.stack(xs)), torch.as_tensor(ys, dtype=torch.int64)))
    return splits[0], splits[1], classes


def load_checkpoint(path: str | None, num_classes: int, param: str = "pretrained_checkpoint") -> nn.Module:
    """The toolkit's resnet18 with the weights of a torch ``state_dict`` file (its own parameter names; ``fc.*`` is dropped)."""
    expected = "a torch state_dict file (torch.save(model.state_dict())) of shared.toolkit.models.resnet18"
    if not path or not Path(path).expanduser().is_file():
        raise MissingInputError(param, path, expected)
    path = Path(path).expanduser()
    model = create_model("resnet18", num_classes=num_classes)
    with reading(param, path, expected):
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise KeyError(f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model


# ---------------------------------------------------------------- models
def build_backbone(arch: str, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if arch == "mlp":
        return create_model("mlp", in_features=int(np.prod(shape)), num_classes=num_classes, widths=(512, 512, 128))
    if arch == "resnet18":
        return create_model("resnet18", num_classes=num_classes)
    raise ParameterError("arch", f"unknown architecture {arch!r}", ["mlp", "resnet18"])


class HeadNet(nn.Module):
    """A backbone with a projection head Linear-BN-ReLU before ``fc``; the head is discarded after pre-training."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        d = backbone.fc.in_features
        self.backbone = backbone
        self.proj = nn.Sequential(nn.Linear(d, d), nn.BatchNorm1d(d), nn.ReLU())
        self.fc = nn.Linear(d, num_classes)

    def forward(self, x):
        h = self.proj(self.backbone(x)[1])
        return self.fc(h), h


def roll_shift(shape: tuple[int, ...], max_shift: int = 2) -> Callable:
    """One random shift (dx, dy) in [-max_shift, max_shift]^2 for the whole batch, by ``torch.roll``."""

    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
        side = int(round((np.prod(shape) if len(shape) == 1 else shape[-1] * shape[-2]) ** 0.5))
        view = x.view(len(x), -1, side, side)
        return torch.roll(view, (dx, dy), (2, 3)).view(x.shape)

    return augment


def pretrain(variant: str, data: Transfer, arch: str, epochs: int, lr: float, batch_size: int, wd: float, seed: int,
             device: str = "cpu") -> nn.Module:
    """The encoder of ``variant`` trained on the source data with the toolkit loop; returned in eval mode."""
    spec = VARIANTS[variant]
    torch.manual_seed(seed)
    backbone = build_backbone(arch, data.shape, data.source_classes)
    n_epochs = spec.get("epochs", epochs)
    if n_epochs:
        model = HeadNet(backbone, data.source_classes) if spec.get("head") else backbone
        ls = spec.get("ls", 0.0)
        loss = lambda logits, y: F.cross_entropy(logits, y, label_smoothing=ls)  # noqa: E731
        augment = None
        if spec.get("aug"):
            if arch == "mlp":
                augment = roll_shift(data.shape)
            else:
                from shared.toolkit.cifar import random_crop_flip
                augment = random_crop_flip
        settings = TrainSettings(epochs=n_epochs, batch_size=batch_size, lr=lr, weight_decay=spec.get("wd", wd),
                                 grad_clip=None, eval_points=1)
        train_classifier(model, loss, data.source, None, settings, device, augment, seed, desc=variant)
    return backbone.to("cpu").eval()


def features(model: nn.Module, x: torch.Tensor, device: str = "cpu") -> torch.Tensor:
    return predict(model.to(device), x, 500, torch.device(device))[1]


def encoder_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The three blocks whose outputs are probed: the MLP's Linear-BN-ReLU blocks, or ResNet stages 2-4."""
    if hasattr(model, "layers"):
        return {"block1": model.layers[1], "block2": model.layers[2], "block3": model.layers[3]}
    f = model.features
    return {"block1": f[3], "block2": f[6], "block3": f[9]}


# ---------------------------------------------------------------- experiment 1
def probe_split(y: torch.Tensor, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` training indices per class drawn with ``default_rng(seed)``, the rest as test."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    train = np.concatenate([rng.choice(np.flatnonzero(y == k), per_class, replace=False) for k in np.unique(y)])
    test = np.setdiff1d(np.arange(len(y)), train)
    return train, test


def evaluate_encoder(encoder: nn.Module, data: Transfer, per_class: int, seed: int, device: str = "cpu",
                     shuffle_labels: bool = False) -> dict:
    """Source NC1, downstream NC1 (probe-train split), probe accuracy, and the per-layer downstream NC1."""
    xs, ys = data.source
    xd, yd = data.downstream
    if shuffle_labels:  # sabotage: downstream labels carry no information
        yd = yd[torch.randperm(len(yd), generator=torch.Generator().manual_seed(seed))]
    train, test = probe_split(yd, per_class, seed)
    h_src = features(encoder, xs, device)
    layers = capture(encoder.to(device), encoder_layers(encoder), xd[train], 500, device)
    h_test = features(encoder, xd[test], device)
    row = {"source_nc1": nc1(h_src, ys, data.source_classes),
           "downstream_nc1": nc1(layers["block3"], yd[train], data.downstream_classes),
           "probe_acc": linear_probe(layers["block3"], yd[train], h_test, yd[test])}
    row.update({f"nc1_{k}": v for k, v in layer_nc1(layers, yd[train], data.downstream_classes).items()})
    row["nc1_input"] = nc1(xd[train].flatten(1), yd[train], data.downstream_classes)
    return row


def pretrain_and_probe(variant: str, seed: int, *, data: Transfer, per_class: int, device: str,
                       train: dict) -> tuple[nn.Module, dict]:
    """One encoder of :func:`run_variants` (``train``: pretrain's settings) and its probe row."""
    enc = pretrain(variant, data, seed=seed, device=device, **train)
    return enc, {"variant": variant, "seed": seed} | evaluate_encoder(enc, data, per_class, seed, device)


def run_variants(data: Transfer, variants, seeds, arch: str, epochs: int, lr: float, batch_size: int, wd: float,
                 per_class: int, device: str = "cpu", n_jobs: int = 1) -> tuple[pd.DataFrame, dict]:
    """Pre-train every variant for every seed and probe it; one row per encoder, and the encoders by (variant, seed).

    ``n_jobs`` > 1 trains the encoders in that many processes of one torch thread each
    (:func:`shared.parallel.parallel_map`): the values equal a one-thread run's."""
    jobs = [(v, s) for s in seeds for v in variants]
    train = {"arch": arch, "epochs": epochs, "lr": lr, "batch_size": batch_size, "wd": wd}
    one = partial(pretrain_and_probe, data=data, per_class=per_class, device=device, train=train)
    outs = parallel_map(one, jobs, n_jobs, desc="encoders")
    encoders = {(row["variant"], row["seed"]): enc for enc, row in outs}
    return pd.DataFrame([row for _, row in outs]), encoders


def spearman(x, y) -> float:
    """Spearman's rho; NaN when an input holds NaN or fewer than three points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return float("nan")
    return float(spearmanr(x, y).statistic)


# ---------------------------------------------------------------- experiment 2
def match_width(z: torch.Tensor, width: int) -> torch.Tensor:
    """Parameter-free skip: pool (mean over groups) or repeat units of z (N, d) to ``width``."""
    d = z.shape[1]
    if d == width:
        return z
    if d > width and d % width == 0:
        return z.view(len(z), width, d // width).mean(-1)
    if width % d == 0:
        return z.repeat_interleave(width // d, dim=1)
    raise ValueError(f"cannot match width {d} to {width} without parameters")


class FTNet(nn.Module):
    """A pre-trained encoder split as stem -> middle -> last, a new ``fc``; SCL-FT adds pooled(middle) to the features.

    BN stays in eval mode: ``train()`` never switches the encoder to training mode (running statistics frozen).
    """

    def __init__(self, encoder: nn.Module, num_classes: int, skip: bool):
        super().__init__()
        import copy

        enc = copy.deepcopy(encoder)
        if hasattr(enc, "layers"):  # CIFAR ResNet
            self.stem = nn.Sequential(enc.conv1, enc.bn1, nn.ReLU(), enc.layers[0], enc.layers[1])
            self.middle = enc.layers[2]
            self.last = nn.Sequential(enc.layers[3], nn.AdaptiveAvgPool2d(1), nn.Flatten())
            width = enc.fc.in_features
        else:  # toolkit MLP with three blocks
            f = enc.features
            self.stem, self.middle, self.last = f[0:4], f[4:7], f[7:10]
            width = enc.fc.in_features
        self.skip = skip
        self.fc = nn.Linear(width, num_classes)

    def train(self, mode: bool = True):  # noqa: D102 - BN frozen during fine-tuning
        return super().train(False)

    def forward(self, x):
        z = self.middle(self.stem(x))
        h = self.last(z)
        if self.skip:
            pooled = z.mean(dim=tuple(range(2, z.dim()))) if z.dim() > 2 else z
            h = h + match_width(pooled, h.shape[1])
        return self.fc(h), h


def finetune_model(encoder: nn.Module, method: str, num_classes: int, seed: int) -> FTNet:
    """The FT network of ``method``; only its selected parameters require gradients."""
    check_names("ft_methods", [method], METHODS)
    torch.manual_seed(seed)
    net = FTNet(encoder, num_classes, skip=method == "scl")
    tuned = {"lp": [net.fc], "layer": [net.last, net.fc], "scl": [net.middle, net.fc], "full": [net]}[method]
    for p in net.parameters():
        p.requires_grad_(False)
    for module in tuned:
        for p in module.parameters():
            p.requires_grad_(True)
    return net


def trainable(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def run_finetune(encoders: dict, downstream: Pair | None, methods, shots, epochs: int, lr: float, batch_size: int,
                 num_classes: int, device: str = "cpu", test: Pair | None = None) -> pd.DataFrame:
    """Fine-tune each encoder (key (name, seed)) with each method on ``n`` per class; test on the rest (or on ``test``)."""
    rows = []
    jobs = [(key, n, m) for key in encoders for n in shots for m in methods]
    for (name, seed), n, method in progress(jobs, desc="fine-tuning"):
        x, y = downstream
        idx, rest = probe_split(y, n, seed)
        held = (x[rest], y[rest]) if test is None else test
        net = finetune_model(encoders[(name, seed)], method, num_classes, seed)
        settings = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=5e-4, grad_clip=None,
                                 eval_points=1)
        hist = train_classifier(net, F.cross_entropy, (x[idx], y[idx]), held, settings, device, None, seed,
                                desc=f"{method} n={n}")
        last = hist.iloc[-1]
        rows.append({"encoder": name, "seed": seed, "n": n, "method": method, "params": trainable(net),
                     "test_acc": float(last.test_acc), "train_nc1": float(last.nc1)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- notebook glue
def load_transfer(data: str, source_dir: str | None = None, downstream_dir: str | None = None) -> Transfer:
    """``mnist`` (cpu/smoke) or ``cifar`` (paper: CIFAR-100 from ``source_dir``, CIFAR-10 from ``downstream_dir``)."""
    if data == "mnist":
        return mnist_transfer()
    if data == "cifar":
        return cifar_transfer(source_dir, downstream_dir)
    raise ParameterError("data", f"unknown data {data!r}", ["mnist", "cifar"])


def finetune_inputs(ft_encoder: str, encoders: dict, data: Transfer, checkpoint: str | None = None,
                    imagefolder: str | None = None, image_size: int = 32) -> tuple[dict, Pair, Pair | None, int]:
    """(encoders to fine-tune, downstream pool, held-out test or None, classes).

    ``checkpoint``: the ResNet18 ``state_dict`` file fine-tuned on the ImageFolder tree (its test split held out);
    otherwise the experiment-1 encoders of variant ``ft_encoder`` on the downstream pool.
    """
    if ft_encoder == "checkpoint":
        train, test, classes = read_imagefolder(imagefolder, image_size)
        model = load_checkpoint(checkpoint, len(classes)).eval()
        seeds = sorted({seed for _, seed in encoders}) or [0]
        return {("checkpoint", s): model for s in seeds}, train, test, len(classes)
    chosen = {key: enc for key, enc in encoders.items() if key[0] == ft_encoder}
    if not chosen:
        raise ParameterError("ft_encoder", f"{ft_encoder!r} is not among the pre-trained variants",
                             sorted({k[0] for k in encoders}) + ["checkpoint"])
    return chosen, data.downstream, None, data.downstream_classes


def layer_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Per-layer downstream NC1 in long form: variant, seed, layer (0 = input .. 3 = features), nc1."""
    cols = ["nc1_input", "nc1_block1", "nc1_block2", "nc1_block3"]
    long = probes.melt(id_vars=["variant", "seed"], value_vars=cols, var_name="name", value_name="nc1")
    long["layer"] = long.name.map({c: i for i, c in enumerate(cols)})
    return long.drop(columns="name").sort_values(["variant", "seed", "layer"]).reset_index(drop=True)
