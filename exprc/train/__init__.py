"""Re-alignment (the paper's Section 2.3): fine-tune a model whose LayerNorms were replaced, one process or many.

    from exprc.train import RealignConfig, realign
    result = realign(RealignConfig(output="runs/gp-d", model="vit_base_patch16_224", checkpoint="vit_b16.pth",
                                   layers="layers.json", variant="D", data="imagenet/"))

`exprc realign` is the command line over it. Files: `config.py` (the run and Table 3), `data.py`, `models.py`,
`loss.py`, `loop.py` (one epoch), `run.py` (a whole run), `checkpoint.py`, `metrics.py`, `distributed.py`,
`plot.py` (the accuracy curves), `bench.py` (epoch time against the paper's eager modules), `miniature.py`
(the paper's Table 2 and Figure 3 on scikit-learn's digits).
"""

from .config import TABLE3, RealignConfig, paper_defaults, resolve
from .loop import StepInfo
from .run import RealignResult, realign

__all__ = ["RealignConfig", "RealignResult", "StepInfo", "TABLE3", "paper_defaults", "realign", "resolve"]
