"""MIND's learned calibration (``calibration: metanet``), for the ``mind`` strategy (not a plugin).

MIND's "Teaching Assistant" network turns the inertia-filtered training loss into supervision
(Cui et al. 2026; reviewers' summaries call it a MetaNet). The paper gives no architecture or
training rule, so this is a reading in the manner of Meta-Weight-Net (Shu et al. 2019,
arXiv:1902.07379): a small MLP maps a rationale's features — its inertia-filtered loss (the EMA of
:class:`cotgap_plugins.mind.MindWeights`) and its source · perspective (one-hot) — to a positive
value ``v_i``; the weights are then normalised per group exactly as the heuristic's are,

    w_i = m + (1 - m) * |G| * v_i / sum_{j in G} v_j                            (m = min_weight)

(the heuristic is the fixed choice ``v_i = exp(-EMA_i / tau)``). The network is trained online
from the student's feedback on a *held-out* slice of the train split (questions whose rationales
the student never trains on). Before every update, first order:

1. ``g`` = the gradient of the student's loss on a held-out batch (trainable parameters only);
2. for each rationale ``i`` of the training batch, ``a_i = g . grad L_i`` — how much one step on
   ``i`` lowers the held-out loss — by a central finite difference of ``L_i`` along ``g``
   (two no-gradient forward passes of the batch at ``theta +- h g``, ``|h g| = FD_STEP``);
3. one SGD step of the network on ``-mean_i(a_i / mean|a|) * w_i``: rationales whose learning
   helps the held-out questions gain weight (MW-Net's meta-gradient with ``theta'`` taken at
   ``theta``: the first-order approximation; the scale of ``a`` is normalised away so the meta
   learning rate does not depend on the gradients' size);
4. the batch is trained with the updated network's weights (as MW-Net does).

Cost per update: one forward and backward pass of a held-out batch and two forward passes of the
training batch, about twice plain training. One process only (the meta step is not synchronised
across processes: ``training.launcher: accelerate`` is refused by the strategy's check).
"""

from __future__ import annotations

import math

#: norm of the parameter step of the finite difference (float32 training; bf16 would need more)
FD_STEP = 1e-3


class MetaCalibration:
    """The MetaNet, its held-out rows and its online update; weights as MindWeights gives them.

    ``mind`` supplies the inertia-filtered losses and groups; ``categories[i]`` is the
    source · perspective index of example ``i`` (``n_categories`` of them); ``meta_rows`` are
    tokenised held-out examples (``input_ids``/``labels`` rows, as the trainer's)."""

    def __init__(
        self,
        mind,
        categories: list[int],
        n_categories: int,
        meta_rows: list[dict],
        *,
        hidden: int = 16,
        lr: float = 0.5,
        seed: int = 0,
    ):
        import torch

        if not meta_rows:
            raise ValueError("metanet calibration needs held-out rows")
        self.mind, self.categories, self.n_categories = mind, list(categories), int(n_categories)
        self.meta_rows = [{**r, "example_index": -1 - k} for k, r in enumerate(meta_rows)]
        self.lr = float(lr)
        gen = torch.Generator().manual_seed(int(seed))
        self.net = torch.nn.Sequential(
            torch.nn.Linear(1 + self.n_categories, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        self.meta_cursor, self.steps = 0, 0
        self.history: list[dict] = []  # per update: held-out loss, mean |a|, weight spread

    # -- weights --------------------------------------------------------------------------------
    def _features(self, idx: list[int]):
        import torch

        ema = self.mind.ema
        known = [x for x in ema if x is not None]
        fill = sum(known) / len(known) if known else 0.0
        x = torch.zeros(len(idx), 1 + self.n_categories)
        for row, i in enumerate(idx):
            x[row, 0] = ema[i] if ema[i] is not None else fill
            x[row, 1 + self.categories[i]] = 1.0
        return x

    def weights_tensor(self, indices: list[int]):
        """Differentiable weights of ``indices`` (normalised over each one's whole group)."""
        import torch

        groups = {self.mind.groups[i] for i in indices}
        members = sorted({j for g in groups for j in self.mind.members[g]})
        pos = {j: k for k, j in enumerate(members)}
        v = torch.nn.functional.softplus(self.net(self._features(members))).squeeze(1) + 1e-6
        m = self.mind.min_weight
        out = []
        for i in indices:
            grp = self.mind.members[self.mind.groups[i]]
            if len(grp) == 1:
                out.append(torch.ones((), dtype=v.dtype))
                continue
            total = sum(v[pos[j]] for j in grp)
            out.append(m + (1.0 - m) * len(grp) * v[pos[i]] / total)
        return torch.stack(out)

    def weights(self) -> list[float]:
        import torch

        with torch.no_grad():
            return self.weights_tensor(list(range(len(self.categories)))).tolist()

    # -- the online meta step -------------------------------------------------------------------
    def _meta_batch(self, size: int) -> list[dict]:
        rows = [self.meta_rows[(self.meta_cursor + k) % len(self.meta_rows)] for k in range(size)]
        self.meta_cursor = (self.meta_cursor + size) % len(self.meta_rows)
        return rows

    def step(self, trainer, model, inputs, index: list[int]) -> None:
        """One first-order meta step (module docstring) before the update on ``inputs``."""
        import torch

        from cotgap import per_example_loss

        params = [p for p in model.parameters() if p.requires_grad]
        device = params[0].device
        size = max(1, int(trainer.args.per_device_train_batch_size))
        meta = trainer.data_collator(self._meta_batch(min(size, len(self.meta_rows))))
        meta_loss = per_example_loss(
            model(input_ids=meta["input_ids"].to(device), attention_mask=meta["attention_mask"].to(device)).logits,
            meta["labels"].to(device),
        ).mean()
        grads = torch.autograd.grad(meta_loss, params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads)]
        norm = math.sqrt(sum(float((g.float() ** 2).sum()) for g in grads))
        if norm == 0.0 or not math.isfinite(norm):
            return
        a = self._directional(model, params, grads, FD_STEP / norm, inputs, per_example_loss)
        scale = float(a.abs().mean())
        w = self.weights_tensor(index)
        if scale > 0 and math.isfinite(scale):
            objective = -(a.to(w.dtype) / scale * w).mean()
            self.net.zero_grad()
            objective.backward()
            with torch.no_grad():
                for p in self.net.parameters():
                    if p.grad is not None:
                        p.sub_(self.lr * p.grad)
        self.steps += 1
        self.history.append(
            {
                "meta_loss": round(float(meta_loss), 5),
                "alignment_mean_abs": scale,
                "weight_min": round(float(w.min()), 4),
                "weight_max": round(float(w.max()), 4),
            }
        )

    @staticmethod
    def _directional(model, params, grads, h: float, inputs, per_example_loss):
        """``a_i = g . grad L_i`` of every example of ``inputs`` by a central difference along ``g``."""
        import torch

        batch = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
        labels = inputs["labels"]
        saved = [p.detach().clone() for p in params]
        out = []
        try:
            with torch.no_grad():
                for sign in (1.0, -1.0):
                    for p, s, g in zip(params, saved, grads):
                        p.copy_(s + sign * h * g)
                    out.append(per_example_loss(model(**batch).logits, labels).float())
        finally:
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)
        return (out[0] - out[1]) / (2.0 * h)

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        return {
            "net": {k: v.tolist() for k, v in self.net.state_dict().items()},
            "cursor": self.meta_cursor,
            "steps": self.steps,
            "history": list(self.history),
        }

    def load_checkpoint_state(self, state: dict) -> None:
        import torch

        self.net.load_state_dict({k: torch.tensor(v) for k, v in state["net"].items()})
        self.meta_cursor, self.steps = int(state["cursor"]), int(state["steps"])
        self.history = list(state.get("history", []))
