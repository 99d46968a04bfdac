"""Deformable vs ordinary convolution on warped handwritten digits, on CPU.

scikit-learn's bundled digits (1797 images of 8x8 pixels, no download) are rescaled to
32x32 and randomly warped (rotation, scale, shear, shift and a smooth elastic distortion;
fresh warps at every training step, fixed ones for the test set). The same small CNN is
trained twice, with ``torch.nn.Conv2d`` and with ``omniconv.nn.DeformConv2dPack`` in its
two inner layers, and both test accuracies are printed. About a minute on two CPU cores.

    python examples/train_digits.py

Scale out: the same script under torchrun trains with DistributedDataParallel on the gloo
backend (CPU), each process taking its share of every batch (the global batch stays the
same, so the run computes what one process computes, faster):

    torchrun --nproc_per_node=2 examples/train_digits.py

Needs scikit-learn: pip install 'omniconv[examples]'.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from omniconv._progress import Progress
from omniconv.nn import DeformConv2dPack

SIZE = 32  # pixels of the images: the 8x8 digits rescaled to 20x20 and centred
DIGIT = 20


# --------------------------------------------------------------------------- data


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as ``(1797, 1, 32, 32)`` float images in [0, 1] (each digit
    rescaled to 20x20 and centred, with room to move) and their labels."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as exc:
        raise SystemExit(
            "this example reads scikit-learn's bundled digits: pip install 'omniconv[examples]'"
        ) from exc
    digits = sklearn_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, size=(DIGIT, DIGIT), mode="bilinear", align_corners=False)
    border = (SIZE - DIGIT) // 2
    return F.pad(images, (border,) * 4), torch.tensor(digits.target)


def warp(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image under its own random affine map (rotation up to 30 degrees, scale 0.8 to
    1.2, shear up to 0.25, shift up to 3 px) and a smooth elastic displacement (about
    1.5 px)."""
    n = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-math.radians(30), math.radians(30))
    scale = uniform(0.8, 1.2)
    shear = uniform(-0.25, 0.25)
    shift = uniform(-3, 3), uniform(-3, 3)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + shear * cos, shift[0] * 2 / SIZE], 1),
            torch.stack([sin, cos + shear * sin, shift[1] * 2 / SIZE], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # elastic: coarse random displacements (4x4 per image), smoothly upsampled
    coarse = torch.randn(n, 2, 4, 4, generator=generator) * (1.5 * 2 / SIZE)
    elastic = F.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=True)
    grid = grid + elastic.permute(0, 2, 3, 1)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def split(
    images: torch.Tensor, labels: torch.Tensor, test_fraction: float = 0.2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A stratified train / test split; the test images are warped once (fixed)."""
    from sklearn.model_selection import train_test_split

    idx_train, idx_test = train_test_split(
        torch.arange(len(labels)).numpy(),
        test_size=test_fraction,
        stratify=labels.numpy(),
        random_state=seed,
    )
    test = warp(images[idx_test], torch.Generator().manual_seed(seed + 1))
    return images[idx_train], labels[idx_train], test, labels[idx_test]


# --------------------------------------------------------------------------- model


def make_net(deformable: bool) -> nn.Module:
    """A small CNN; ``deformable``: its two inner convolutions are DeformConv2dPack
    (DCNv2: learned offsets and mask, starting as the plain convolution)."""
    conv = DeformConv2dPack if deformable else nn.Conv2d
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        conv(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        conv(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )  # fmt: skip


# --------------------------------------------------------------------------- training


@dataclass
class World:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_world() -> World:
    """Join the torchrun job on the gloo backend when torchrun started this process."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return World()
    dist.init_process_group("gloo")
    return World(dist.get_rank(), dist.get_world_size())


def train(
    deformable: bool,
    data: tuple[torch.Tensor, torch.Tensor],
    steps: int,
    batch: int,
    world: World,
    seed: int,
) -> tuple[nn.Module, float]:
    """Train one net for ``steps`` steps of a global batch of ``batch`` images (each
    process takes ``batch / world.size`` of them); the net and the seconds it took."""
    images, labels = data
    torch.manual_seed(seed)  # the same initial net everywhere (DDP broadcasts rank 0's too)
    net = make_net(deformable)
    model: nn.Module = net
    if world.size > 1:
        model = nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    order = torch.Generator().manual_seed(seed)  # the same batches on every process
    warps = torch.Generator().manual_seed(seed * 1000 + world.rank + 7)  # own warps
    share = batch // world.size
    name = "DeformConv2dPack" if deformable else "Conv2d"
    bar = Progress(steps, enabled=world.main)
    model.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        pick = torch.randint(len(labels), (batch,), generator=order)
        mine = pick[world.rank * share : (world.rank + 1) * share]
        loss = F.cross_entropy(model(warp(images[mine], warps)), labels[mine])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.step(f"{name}: loss {loss.item():.3f}")
    return net, time.perf_counter() - t0


@torch.no_grad()
def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    hits = sum(
        int((net(x).argmax(1) == y).sum())
        for x, y in zip(images.split(256), labels.split(256), strict=True)
    )
    return hits / len(labels)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps per net (1000)")
    parser.add_argument("--batch", type=int, default=64, help="global batch size (64)")
    parser.add_argument(
        "--limit", type=int, default=None, help="use only this many images (a quick check)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    world = start_world()
    try:
        if args.batch % world.size:
            parser.error(f"--batch {args.batch} must be divisible by the {world.size} processes")
        images, labels = load_digits()
        if args.limit:
            images, labels = images[: args.limit], labels[: args.limit]
        train_x, train_y, test_x, test_y = split(images, labels, seed=args.seed)
        results: dict[str, object] = {
            "processes": world.size,
            "train_images": len(train_y),
            "test_images": len(test_y),
            "steps": args.steps,
            "batch": args.batch,
        }
        if world.main and not args.json:
            print(
                f"digits: {len(train_y)} training and {len(test_y)} test images, "
                f"{SIZE}x{SIZE}, randomly warped; {args.steps} steps of {args.batch} images "
                f"per net, {world.size} process{'es' if world.size > 1 else ''}"
            )
        for deformable in (False, True):
            name = "DeformConv2dPack" if deformable else "Conv2d"
            net, seconds = train(
                deformable, (train_x, train_y), args.steps, args.batch, world, args.seed
            )
            acc = accuracy(net, test_x, test_y)
            results[name] = {"test_accuracy": acc, "train_seconds": round(seconds, 2)}
            if world.main and not args.json:
                print(f"{name:<17} test accuracy {acc:.3f}  (trained in {seconds:.1f} s)")
        if world.main and args.json:
            print(json.dumps(results))
        return results
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
