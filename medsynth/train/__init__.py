"""Training on (synthetic) data: classifiers for text, table rows and images, NER taggers, DP-SGD with Opacus, and
noise-robust training. Heavy modules (torch, opacus, transformers) load inside the functions that need them.

    from medsynth.train import ClassifierConfig, DPConfig, RobustConfig, fit_classifier, TrainedModel
"""

from .classifiers import ClassifierConfig, TrainedModel, classification_metrics, fit_classifier
from ..dp import DPConfig, DPModelError, DPTrainingError, epsilons, plan_dp, validate_module
from .robust import RobustConfig

__all__ = ["ClassifierConfig", "TrainedModel", "fit_classifier", "classification_metrics", "DPConfig", "DPModelError",
           "DPTrainingError", "epsilons", "plan_dp", "validate_module", "RobustConfig"]
