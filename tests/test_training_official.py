"""`--config official` against the official STDAN recipe, item by item, each with an oracle
written from the official code (a port of its class or its formula), not from ours:
the scheduler (CosineAnnealingLR_Restart, stepped as the official train.py steps it), the
Charbonnier loss (summed), the deformable convolutions' initialisation, stochastic depth in
both Swin stacks, fp32, a checkpoint every 1,000 iterations. docs/training.md cites the
official lines."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner
from torch.optim.lr_scheduler import _LRScheduler

from stdan_cli.cli.main import main
from stdan_cli.model import STDAN, STDANConfig
from stdan_cli.model.swin import SwinBlock
from stdan_cli.training import Recipe, load_recipe, lr_at
from stdan_cli.training.objective import charbonnier
from stdan_cli.training.trainer import autocast_dtype, training_model


class OfficialCosineAnnealingLR_Restart(_LRScheduler):
    """A port of the official ``CosineAnnealingLR_Restart`` (codes/models/lr_scheduler.py of
    the EDVR / Zooming-Slow-Mo / STDAN code base): each lr from the previous one."""

    def __init__(self, optimizer, T_period, restarts=None, weights=None, eta_min=0, last_epoch=-1):
        self.T_period = T_period
        self.T_max = self.T_period[0]
        self.eta_min = eta_min
        self.restarts = restarts if restarts else [0]
        self.restart_weights = weights if weights else [1]
        self.last_restart = 0
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return self.base_lrs
        if self.last_epoch in self.restarts:
            self.last_restart = self.last_epoch
            self.T_max = self.T_period[self.restarts.index(self.last_epoch) + 1]
            weight = self.restart_weights[self.restarts.index(self.last_epoch)]
            return [group["initial_lr"] * weight for group in self.optimizer.param_groups]
        if (self.last_epoch - self.last_restart - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups)]
        return [(1 + math.cos(math.pi * (self.last_epoch - self.last_restart) / self.T_max))
                / (1 + math.cos(math.pi * ((self.last_epoch - self.last_restart) - 1) / self.T_max))
                * (group["lr"] - self.eta_min) + self.eta_min for group in self.optimizer.param_groups]


def official_lrs(periods, restarts, weights, eta_min, lr, iterations):
    """The lr of each iteration 1..N as the official train.py gets it: the scheduler is made
    (its step 0), then stepped once before every iteration (``update_learning_rate(current_step)``)."""
    import warnings

    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr, betas=(0.9, 0.99))
    with warnings.catch_warnings():  # stepping the scheduler before optimizer.step(), as the official loop
        warnings.simplefilter("ignore")
        sched = OfficialCosineAnnealingLR_Restart(opt, periods, restarts, weights, eta_min)
        out = []
        for _ in range(iterations):
            sched.step()
            out.append(opt.param_groups[0]["lr"])
    return out


@pytest.mark.parametrize("periods, weights, run", [
    ([10, 10, 10, 10], [1, 1, 1], 40),
    ([6, 9, 12], [0.5, 0.25], 27),
    ([10, 10], [0.5], 35),  # past the last period (a continued run): the official cosine climbs again
])
def test_schedule_equals_the_official_scheduler_stepped_as_its_train_py(periods, weights, run):
    restarts = [sum(periods[: k + 1]) for k in range(len(periods) - 1)]  # train_stdan.yml: 150000, 300000, 450000
    expected = official_lrs(periods, restarts, weights, 1e-7, 2e-4, run)
    recipe = Recipe(periods=tuple(periods), restart_weights=tuple(weights), iterations=run)
    ours = [lr_at(recipe, t) for t in range(1, run + 1)]
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_official_600k_schedule_restarts_where_the_official_one_does():
    """All 600,000 learning rates of the official recipe, against the official recursion
    (pure Python here: the torch port above at this length takes many seconds)."""
    r = load_recipe("official")
    periods, restarts, base, eta = [150_000] * 4, [150_000, 300_000, 450_000], 2e-4, 1e-7
    lr, last_restart, t_max, worst = base, 0, periods[0], 0.0
    for t in range(1, 600_001):
        if t in restarts:
            last_restart, t_max, lr = t, periods[restarts.index(t) + 1], base
        elif (t - last_restart - 1 - t_max) % (2 * t_max) == 0:
            lr = lr + (base - eta) * (1 - math.cos(math.pi / t_max)) / 2
        else:
            lr = ((1 + math.cos(math.pi * (t - last_restart) / t_max))
                  / (1 + math.cos(math.pi * (t - last_restart - 1) / t_max)) * (lr - eta) + eta)
        worst = max(worst, abs(lr_at(r, t) - lr) / lr)
    assert worst < 1e-6
    assert lr_at(r, 150_000) == 2e-4 and lr_at(r, 149_999) < 1e-6 and lr_at(r, 600_000) == pytest.approx(1e-7)


def test_short_runs_keep_periods_of_at_least_ten_iterations():
    r = load_recipe("official", iterations=12)
    assert r.periods == (12,) and lr_at(r, 1) > 0.9 * r.lr  # not one restart per 3 iterations at eta_min
    assert load_recipe("official", iterations=40).periods == (10, 10, 10, 10)


def official_charbonnier(x, y, eps=1e-6):
    """The official ``CharbonnierLoss.forward`` (codes/models/modules/loss.py)."""
    diff = x - y
    return torch.sum(torch.sqrt(diff * diff + eps))


def test_loss_is_the_official_sum_and_mean_is_a_named_option():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 7, 3, 8, 8, generator=g), torch.rand(2, 7, 3, 8, 8, generator=g)
    r = load_recipe("official")
    assert r.loss_reduction == "sum" and r.charbonnier_eps == 1e-6
    assert charbonnier(x, y, r.charbonnier_eps, r.loss_reduction).item() == pytest.approx(
        official_charbonnier(x, y).item(), rel=1e-6)
    assert charbonnier(x, y, 1e-6, "mean").item() == pytest.approx(official_charbonnier(x, y).item() / x.numel(),
                                                                    rel=1e-6)


def test_deformable_convolutions_start_as_the_official_ones():
    """kaiming_uniform for relu: U(-b, b) with b = gain sqrt(3 / fan_in), gain sqrt(2); the
    convolutions that predict offsets and masks start at zero."""
    torch.manual_seed(0)
    model = STDAN(STDANConfig())
    packs = [m for n, m in model.named_modules() if type(m).__name__ == "DCNv2Pack"]
    assert packs
    for pack in packs:
        fan_in = pack.weight.shape[1] * 9
        bound = math.sqrt(2.0) * math.sqrt(3.0 / fan_in)
        assert bound == pytest.approx(0.102, abs=5e-4)
        w = pack.weight.detach()
        assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
        assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # uniform: b / sqrt(3)
        assert not pack.conv_offset.weight.any() and not pack.conv_offset.bias.any()
    samplers = [m for n, m in model.named_modules() if type(m).__name__ == "DeformableSampler"]
    assert samplers and all(not s.conv_offset_mask.weight.any() and not s.conv_offset_mask.bias.any()
                            for s in samplers)


def test_drop_path_in_both_swin_stacks_as_the_official_linspace():
    r = load_recipe("small")
    assert r.drop_path_rate == 0.1 and load_recipe("official").drop_path_rate == 0.1
    model = training_model(r)
    for stack in (model.feature_extraction, model.feature_recon):
        blocks = [b for layer in stack.layers for b in layer.residual_group.blocks]
        # the official Swin: dpr = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]
        expected = [x.item() for x in torch.linspace(0, 0.1, len(blocks))]
        assert [b.drop_path for b in blocks] == pytest.approx(expected)
        assert blocks[-1].drop_path == pytest.approx(0.1)


def test_drop_path_drops_whole_branches_per_image_in_training_only(monkeypatch):
    torch.manual_seed(0)
    block = SwinBlock(8, 2, 4, 0, 2.0, 8)
    block.drop_path = 0.25
    x = torch.rand(3, 64, 8)
    block.eval()
    plain = block(x, (8, 8))
    block.train()
    scales = block.branch_scales(20000, torch.device("cpu"))
    assert scales.unique().tolist() == pytest.approx([0.0, 1 / 0.75])
    assert scales.mean().item() == pytest.approx(1.0, abs=0.02)  # timm's DropPath keeps the expectation
    fixed = torch.tensor([[0.0, 1 / 0.75], [1 / 0.75, 0.0], [1.0, 1.0]])
    monkeypatch.setattr(block, "branch_scales", lambda b, d: fixed)
    out = block(x, (8, 8))
    for i, (ka, km) in enumerate(fixed.tolist()):  # x + ka attn(norm1 x), then + km mlp(norm2 .)
        xi = x[i].view(4, 16, 8)  # 4 windows of 4x4 tokens (no shift: the tokens are in window order)
        bias = block.attn.position_bias().float().expand(4, 2, 16, 16).reshape(8, 16, 16)
        y = xi + ka * block.attn(block.norm1(xi), bias)
        y = y + km * block.mlp(block.norm2(y))
        assert torch.allclose(out[i], y.reshape(64, 8), atol=1e-6)
    assert torch.allclose(out[2], plain[2], atol=1e-6)


def test_official_precision_is_fp32_and_a_checkpoint_every_1000():
    r = load_recipe("official")
    assert r.save_every == 1000 and r.val_every == 1000
    assert autocast_dtype("fp32", torch.device("cuda")) is None
    help_text = CliRunner().invoke(main, ["train", "--help"]).output
    assert "[default: fp32]" in " ".join(help_text.split())
