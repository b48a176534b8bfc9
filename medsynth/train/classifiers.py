"""Classifiers for text, table rows and images, trained with or without DP-SGD, and their evaluation.

    from medsynth.train import ClassifierConfig, fit_classifier
    m = fit_classifier(records, ClassifierConfig(model="text_embed"), dp=DPConfig(epsilon=3, delta=1e-5))
    m.evaluate(real_test)       # micro/macro-F1, AUROC, accuracy
    m.save("model/")            # weights + meta.json (labels, featurizer, privacy); TrainedModel.load("model/")

Models (``model:``): ``mlp`` (table rows; 2×128 by default), ``text_embed`` (frozen MiniLM sentence embeddings +
MLP/linear head), ``text_finetune`` (a small transformer — MiniLM by default — with its top ``train_layers`` layers
and a head trained, the rest frozen), ``cnn`` (a small GroupNorm CNN on images from ``image_path``); ``auto``
picks by the records' ``kind``. Tasks: ``multiclass`` (one label per record) or ``multilabel``; ``auto`` decides
from the training labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..data.records import Record
from ..exceptions import DataFormatError, RecipeError

__all__ = ["ClassifierConfig", "TrainedModel", "fit_classifier", "build_network", "check_labels", "classification_metrics"]

ModelName = Literal["auto", "mlp", "linear", "text_embed", "text_finetune", "cnn"]


class ClassifierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelName = Field("auto", description="mlp | linear | text_embed | text_finetune | cnn | auto (by record kind)")
    task: Literal["auto", "multiclass", "multilabel"] = "auto"
    hidden: list[int] = Field(default_factory=lambda: [128, 128], description="hidden layer sizes of the MLP/head ([] = linear)")
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1, description="batch size (with dp: the expected Poisson batch size)")
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = Field(0.0, ge=0)
    threshold: float = Field(0.5, gt=0, lt=1, description="multi-label decision threshold")
    columns: list[str] | None = Field(None, description="table columns used as features (default: all)")
    backbone: str | None = Field(None, description="text_finetune: HF model folder (default: the packaged MiniLM)")
    max_length: int = Field(128, ge=8, description="text_finetune: tokens per record")
    train_layers: int = Field(2, ge=0, description="text_finetune: top transformer layers trained (the rest frozen)")
    image_size: int = Field(64, ge=8)
    image_channels: Literal[1, 3] = 1
    dp_max_grad_norm: float | None = Field(None, gt=0, description="under DP: this model's per-sample clipping norm (default: dp.max_grad_norm)")


# -- networks -----------------------------------------------------------------------------------------------
def freeze_lower_layers(encoder: Any, train_layers: int) -> Any:
    """Freeze an HF encoder except its top ``train_layers`` transformer layers (embeddings always frozen)."""
    for p in encoder.parameters():
        p.requires_grad_(False)
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if layers is not None and train_layers > 0:
        for layer in list(layers)[-train_layers:]:
            for p in layer.parameters():
                p.requires_grad_(True)
    return encoder


def build_network(kind: str, in_dim: int, n_out: int, cfg: ClassifierConfig, backbone: str | None = None) -> Any:
    from torch import nn

    def mlp(d: int, hidden: list[int]) -> nn.Module:
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, n_out))
        return nn.Sequential(*layers)

    if kind in ("mlp", "text_embed"):
        return mlp(in_dim, cfg.hidden)
    if kind == "linear":
        return mlp(in_dim, [])
    if kind == "cnn":
        c = cfg.image_channels

        class SmallCNN(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                chans = [c, 16, 32, 64]
                blocks: list[nn.Module] = []
                for a, b in zip(chans[:-1], chans[1:], strict=True):
                    blocks += [nn.Conv2d(a, b, 3, padding=1), nn.GroupNorm(min(8, b), b), nn.ReLU(), nn.MaxPool2d(2)]
                self.features = nn.Sequential(*blocks)
                self.head = nn.Linear(64, n_out)

            def forward(self, x: Any) -> Any:
                return self.head(self.features(x).mean((2, 3)))

        return SmallCNN()
    if kind == "text_finetune":
        from transformers import AutoModel

        class Finetune(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.backbone = freeze_lower_layers(AutoModel.from_pretrained(backbone), cfg.train_layers)
                self.head = nn.Linear(self.backbone.config.hidden_size, n_out)

            def forward(self, ids: Any, mask: Any) -> Any:
                h = self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).to(h.dtype)
                return self.head((h * m).sum(1) / m.sum(1).clamp_min(1.0))

        net = Finetune()
        net.train()
        return net
    raise RecipeError(f"unknown model '{kind}'")


# -- labels and checks --------------------------------------------------------------------------------------
def check_labels(train: list[Record], task: str, evals: dict[str, list[Record]] | None = None) -> tuple[str, list[str]]:
    """Decide the task and label set; raise before training on single-class data, unlabelled records, or eval labels
    never seen in training."""
    if not train:
        raise DataFormatError("the training set is empty.")
    unl = [r.id for r in train if not r.labels]
    if unl:
        raise DataFormatError(f"{len(unl)} training record(s) have no label (e.g. {unl[0]}). Label or filter them first.")
    if task == "auto":
        task = "multiclass" if all(len(r.labels) == 1 for r in train) else "multilabel"
    if task == "multiclass":
        multi = [r.id for r in train if len(r.labels) != 1]
        if multi:
            raise DataFormatError(f"task multiclass needs exactly one label per record; {len(multi)} record(s) have several "
                                  f"(e.g. {multi[0]}). Use task: multilabel.")
    labels = sorted({lab for r in train for lab in r.labels})
    if task == "multiclass" and len(labels) < 2:
        raise DataFormatError(f"the training set has a single class ({labels[0]!r}); a classifier needs at least two. Add records "
                              "of another class (e.g. generate more labels).")
    if task == "multilabel" and len({tuple(sorted(r.labels)) for r in train}) < 2:
        raise DataFormatError("every training record has the same label set; a classifier needs at least two different ones.")
    for name, recs in (evals or {}).items():
        unseen = sorted({lab for r in recs for lab in r.labels} - set(labels))
        if unseen:
            raise DataFormatError(f"evaluation set '{name}' has {len(unseen)} label(s) absent from the training set: "
                                  f"{', '.join(unseen[:10])}. The model cannot predict them; add training records with these labels "
                                  "or remove them from the evaluation set (e.g. a `select` step).")
    return task, labels


def _targets(records: list[Record], labels: list[str], task: str) -> Any:
    import torch

    pos = {lab: i for i, lab in enumerate(labels)}
    if task == "multiclass":
        return torch.tensor([pos[r.labels[0]] for r in records], dtype=torch.long)
    Y = torch.zeros((len(records), len(labels)))
    for i, r in enumerate(records):
        for lab in r.labels:
            if lab in pos:
                Y[i, pos[lab]] = 1.0
    return Y


def classification_metrics(y_true: Any, proba: Any, task: str, labels: list[str], threshold: float = 0.5) -> dict[str, Any]:
    """micro/macro-F1, accuracy (subset accuracy for multi-label), macro AUROC over labels with both classes present."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    P = np.asarray(proba)
    if task == "multiclass":
        yt = np.asarray(y_true)
        pred = P.argmax(1)
        out: dict[str, Any] = {"accuracy": float(accuracy_score(yt, pred)),
                               "micro_f1": float(f1_score(yt, pred, average="micro", labels=list(range(len(labels))), zero_division=0)),
                               "macro_f1": float(f1_score(yt, pred, average="macro", labels=sorted(set(yt.tolist())), zero_division=0))}
        present = sorted(set(yt.tolist()))
        if len(labels) == 2 and len(present) == 2:
            out["auroc"] = float(roc_auc_score(yt, P[:, 1]))
        elif len(present) >= 2:
            Y = np.eye(len(labels))[yt]
            aucs = [roc_auc_score(Y[:, j], P[:, j]) for j in present]
            out["auroc"] = float(np.mean(aucs))
        return out
    Y = np.asarray(y_true)
    pred = (P >= threshold).astype(int)
    present = [j for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)]
    out = {"subset_accuracy": float((pred == Y).all(1).mean()),
           "micro_f1": float(f1_score(Y, pred, average="micro", zero_division=0)),
           "macro_f1": float(f1_score(Y[:, present], pred[:, present], average="macro", zero_division=0)) if present else float("nan")}
    if present:
        out["auroc"] = float(np.mean([roc_auc_score(Y[:, j], P[:, j]) for j in present]))
    return out


# -- the trained model --------------------------------------------------------------------------------------
def _featurizer(kind: str, cfg: ClassifierConfig, dp: Any) -> Any:
    from .features import EmbedFeaturizer, ImageFeaturizer, RowFeaturizer, TokenFeaturizer, minilm_path

    if kind in ("mlp", "linear"):
        return RowFeaturizer(cfg.columns, dp.feature_bounds if dp is not None else None)
    if kind == "text_embed":
        return EmbedFeaturizer()
    if kind == "text_finetune":
        return TokenFeaturizer(cfg.backbone or minilm_path(), cfg.max_length)
    if kind == "cnn":
        return ImageFeaturizer(cfg.image_size, cfg.image_channels)
    raise RecipeError(f"unknown model '{kind}'")


def resolve_model_kind(records: list[Record], model: str) -> str:
    kinds = {r.kind for r in records}
    if len(kinds) > 1:
        raise DataFormatError(f"one classifier needs records of one kind; got {sorted(kinds)}. Train one model per modality "
                              "(the train step does this when given several inputs).")
    kind = next(iter(kinds)) if kinds else "text"
    if model == "auto":
        return {"text": "text_embed", "row": "mlp", "image": "cnn"}[kind]
    expected = {"mlp": "row", "linear": "row", "text_embed": "text", "text_finetune": "text", "cnn": "image"}[model]
    if expected != kind:
        raise RecipeError(f"model '{model}' trains on {expected} records but the input holds {kind} records; use model: auto.")
    return model


class TrainedModel:
    """A trained classifier: network + featurizer + label set + how it was trained (incl. privacy)."""

    def __init__(self, net: Any, featurizer: Any, kind: str, task: str, labels: list[str], config: ClassifierConfig,
                 privacy: dict[str, Any] | None = None, info: dict[str, Any] | None = None, in_dim: int = 0):
        self.net = net
        self.featurizer = featurizer
        self.kind = kind
        self.task = task
        self.labels = labels
        self.config = config
        self.privacy = privacy
        self.info = info or {}
        self.in_dim = in_dim

    # inference ---------------------------------------------------------------------------------------------
    def _logits(self, records: list[Record], batch: int = 256) -> Any:
        import torch

        self.net.eval()
        outs = []
        with torch.no_grad():
            for s in range(0, len(records), batch):
                x = self.featurizer.transform(records[s:s + batch])
                outs.append(self.net(*x))
        return torch.cat(outs) if outs else torch.zeros((0, len(self.labels)))

    def predict_proba(self, records: list[Record]) -> Any:
        import torch

        z = self._logits(records)
        return (torch.sigmoid(z) if self.task == "multilabel" else torch.softmax(z, -1)).numpy()

    def predict(self, records: list[Record]) -> list[list[str]]:
        P = self.predict_proba(records)
        if self.task == "multiclass":
            return [[self.labels[int(i)]] for i in P.argmax(1)]
        return [[self.labels[j] for j in range(len(self.labels)) if p[j] >= self.config.threshold] for p in P]

    def targets(self, records: list[Record]) -> Any:
        return _targets(records, self.labels, self.task)

    def per_sample_loss(self, records: list[Record]) -> Any:
        """Loss of each record under the model (the membership-inference statistic)."""
        from .loop import per_sample_loss

        z = self._logits(records)
        return per_sample_loss(z, self.targets(records), self.task).numpy()  # type: ignore[arg-type]

    def evaluate(self, records: list[Record]) -> dict[str, Any]:
        unseen = sorted({lab for r in records for lab in r.labels} - set(self.labels))
        if unseen:
            raise DataFormatError(f"evaluation records carry {len(unseen)} label(s) the model never saw: {', '.join(unseen[:10])}.")
        y = self.targets(records).numpy()
        m = classification_metrics(y, self.predict_proba(records), self.task, self.labels, self.config.threshold)
        m["n"] = len(records)
        return m

    # persistence -------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        import torch

        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), p / "model.pt")
        meta = {"format": "medsynth-classifier/1", "kind": self.kind, "task": self.task, "labels": self.labels,
                "config": self.config.model_dump(mode="json"), "featurizer": self.featurizer.state(), "privacy": self.privacy,
                "info": {k: v for k, v in self.info.items() if not k.startswith("_")}, "in_dim": self.in_dim}
        (p / "meta.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> TrainedModel:
        import torch

        from .features import EmbedFeaturizer, ImageFeaturizer, RowFeaturizer, TokenFeaturizer

        p = Path(path)
        meta = json.loads((p / "meta.json").read_text(encoding="utf-8"))
        cfg = ClassifierConfig.model_validate(meta["config"])
        kind = meta["kind"]
        fz = {"mlp": RowFeaturizer, "linear": RowFeaturizer, "text_embed": EmbedFeaturizer, "text_finetune": TokenFeaturizer,
              "cnn": ImageFeaturizer}[kind].from_state(meta["featurizer"])
        backbone = meta["featurizer"].get("backbone")
        net = build_network(kind, int(meta["in_dim"]), len(meta["labels"]), cfg, backbone)
        net.load_state_dict(torch.load(p / "model.pt", map_location="cpu", weights_only=True))
        net.eval()
        return cls(net, fz, kind, meta["task"], meta["labels"], cfg, meta.get("privacy"), meta.get("info"), int(meta["in_dim"]))


def fit_classifier(records: list[Record], config: ClassifierConfig | None = None, *, dp: Any = None, robust: Any = None,
                   clean: list[Record] | None = None, evals: dict[str, list[Record]] | None = None, seed: int = 0,
                   ledger: Any = None, budget: str | None = None, run_id: str = "", step: str = "train", progress: Any = None,
                   labels: list[str] | None = None) -> TrainedModel:
    """Train a classifier on ``records``. All checks run before any training (and before any privacy debit).

    With ``dp`` (a :class:`~medsynth.dp.DPConfig`) training is DP-SGD; if a ``ledger`` and ``budget`` are given,
    (ε, δ) is debited before training and the debit is marked ``failed`` if training fails (it is never refunded).
    ``clean``: clean records for ``robust.reweight`` / ``robust.anneal``. ``labels``: force the label set.
    """
    import torch

    from ..dp import check_dp_inputs, plan_dp
    from .loop import TrainSettings, fit_module
    from .robust import check_robust_with_dp

    cfg = config or ClassifierConfig()
    kind = resolve_model_kind(records, cfg.model)
    task, labs = check_labels(records, cfg.task, evals)
    if labels is not None:
        missing = sorted(set(labs) - set(labels))
        if missing:
            raise DataFormatError(f"training labels outside the given label set: {', '.join(missing[:10])}")
        labs = list(labels)
    check_robust_with_dp(robust, dp)
    needs_clean = robust is not None and (robust.reweight is not None or robust.anneal is not None)
    if needs_clean and not clean:
        raise RecipeError("robust.reweight/anneal need clean records (`clean:` dataset): a small labelled real sample, e.g. from "
                          "the validation split.")
    train_recs = list(records)
    syn_mask = None
    if robust is not None and robust.anneal is not None and clean:
        train_recs = list(records) + list(clean)
        syn_mask = [True] * len(records) + [False] * len(clean)
    fz = _featurizer(kind, cfg, dp).fit(train_recs)
    if kind in ("mlp", "linear") and clean:
        fz.check(clean, "clean rows")
    n = len(train_recs)
    plan = None
    if dp is not None:
        check_dp_inputs(dp, n)
        plan = plan_dp(dp, n, cfg.batch_size, cfg.epochs)
    # featurize (public featurizers; RowFeaturizer's fitted scaling is reported) -------------------------------
    X = fz.transform(train_recs)
    y = _targets(train_recs, labs, task)
    in_dim = int(X[0].shape[1]) if kind in ("mlp", "linear", "text_embed") else 0
    backbone = getattr(fz, "backbone", None)
    torch.manual_seed(seed)

    def make() -> Any:
        torch.manual_seed(seed)
        return build_network(kind, in_dim, len(labs), cfg, backbone)

    net = make()
    if any(t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()) for t in X):
        raise DataFormatError("features contain NaN or infinite values; check the input data.")
    clean_t = None
    if robust is not None and robust.reweight is not None:
        clean_t = (fz.transform(clean), _targets(clean, labs, task))  # type: ignore[arg-type]
    settings = TrainSettings(cfg.epochs, cfg.batch_size, cfg.lr, cfg.optimizer, cfg.weight_decay, seed)

    def train() -> Any:
        return fit_module(net, X, y, task, settings, dp_plan=plan, dp=dp, robust=robust, synthetic_mask=syn_mask, clean=clean_t,
                          make_model=make, progress=progress)

    if dp is not None and ledger is not None:
        if not budget:
            raise RecipeError("DP training needs a privacy budget name (dp.budget or the recipe's privacy.budget).")
        with ledger.spend(budget, dp.epsilon, dp.delta, run_id=run_id, step=step, purpose=f"DP-SGD {kind} classifier ({n} records)",
                          accountant=dp.accountant) as debit_id:
            res = train()
        res.privacy = dict(res.privacy or {}, budget=budget, debit_id=debit_id)
    else:
        res = train()
        if res.privacy is not None:
            res.privacy = dict(res.privacy, budget=None, debit_id=None, note="not debited from a ledger (library call without a budget)")
    info: dict[str, Any] = {"n_train": n, "history": res.history, "seconds_per_epoch": res.seconds_per_epoch,
                            "robust": robust.active if robust is not None else [], "seed": seed}
    if kind in ("mlp", "linear"):
        info["scaling_from_private_data"] = fz.data_dependent_scaling
        if res.privacy is not None and fz.data_dependent_scaling:
            res.privacy["not_covered"] = ("per-column centre/scale of numeric columns and the category lists were taken from the "
                                          "training rows; give dp.feature_bounds (public ranges) to cover the scaling by ε")
    if res.weights is not None:
        w = res.weights.numpy()
        info["learned_weights"] = {"mean": float(w.mean()), "min": float(w.min()), "max": float(w.max()),
                                   "share_below_0.5": float((w < 0.5).mean())}
        info["_weights"] = w.tolist()
    return TrainedModel(res.model, fz, kind, task, labs, cfg, res.privacy, info, in_dim)
