"""The training losses: cross-entropy (-A, -F), and for -D the paper's equation (4),

    L = (1 - lambda) * CE(student, labels) + lambda * tau^2 * KL(teacher || student)

with KL between the tau-softened distributions, in timm's `LogitDistillationTask` convention:
`kl_div(log_softmax(s / tau), log_softmax(t / tau), log_target=True, reduction="batchmean") * tau^2`.
No label smoothing (the paper uses none). Computed in float32 whatever the autocast dtype of the logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels)


def distillation_kl(student: torch.Tensor, teacher: torch.Tensor, tau: float) -> torch.Tensor:
    """tau^2 * KL(softmax(teacher/tau) || softmax(student/tau)), summed over classes, averaged over the batch."""
    s = F.log_softmax(student.float() / tau, dim=-1)
    t = F.log_softmax(teacher.float() / tau, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * (tau * tau)


@dataclass(frozen=True)
class Loss:
    """The loss of a run: CE alone (lam None) or the distillation mix."""

    lam: float | None = None
    tau: float = 4.0

    @property
    def distills(self) -> bool:
        return self.lam is not None

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor,
                 teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        ce = cross_entropy(logits, labels)
        if self.lam is None:
            return ce
        if teacher_logits is None:
            raise ValueError("a distillation loss needs the teacher's logits")
        return (1 - self.lam) * ce + self.lam * distillation_kl(logits, teacher_logits, self.tau)
