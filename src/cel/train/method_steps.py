"""Trainer callback for methods with their own periodic update (the ``StepAware`` hook).

eTree and JNKM alternate gradient steps on the leaf embeddings with exact block updates of their
clustering (nearest-parent assignment, closed-form parents); CERP hard-prunes to its budget and
then retrains. None of that is a gradient step, so the trainer hands each embedding the step
number and the method decides; the method also says when validation may select its model.
"""
from __future__ import annotations

from cel.embeddings.base import StepAware
from cel.train.trainer import Callback


class MethodSteps(Callback):
    def on_fit_start(self, trainer) -> None:
        for emb in (trainer.user_emb, trainer.item_emb):
            if isinstance(emb, StepAware):
                emb.on_step(0)

    def on_step_end(self, trainer) -> None:
        for emb in (trainer.user_emb, trainer.item_emb):
            if isinstance(emb, StepAware):
                emb.on_step(trainer.step)

    def ready(self, trainer) -> bool:
        return all(emb.selectable() for emb in (trainer.user_emb, trainer.item_emb) if isinstance(emb, StepAware))
