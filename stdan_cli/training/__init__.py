"""Training STDAN: the paper's recipe on Vimeo-90K (``stdan train``) and fine-tuning on a
user's own footage (``stdan finetune``).

- :func:`load_recipe` / :class:`Recipe`: the official recipe, ``small``, or a file, with overrides.
- :func:`train`: the training loop (resumable checkpoints, validation, log, DDP under torchrun).
- :func:`finetune`: footage -> septuplets (scene cuts never inside one) -> training, with the
  held-out PSNR before and after.
"""

from stdan_cli.training.recipe import RECIPES, Recipe, load_recipe, lr_at
from stdan_cli.training.trainer import Step, TrainResult, train

__all__ = ["Recipe", "RECIPES", "load_recipe", "lr_at", "train", "Step", "TrainResult"]
