"""The learned risk model: gradient boosting on account features, calibrated, persisted as a versioned artefact.

Follows scikit-learn's estimator contract (settings in ``__init__``, learned state ending in ``_``), so it can be
cross-validated, swapped and persisted like any estimator. Persisted with skops (no pickle execution on load: only
the types listed in ``TRUSTED`` may appear in the file). Trained by ``distillguard train`` on simulated traffic.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier

from distillguard.detect.features import FEATURES

if TYPE_CHECKING:
    from distillguard.config import DetectConfig

log = logging.getLogger(__name__)

DEFAULT_MODEL = "risk-v1.skops"


class RiskModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """P(attack) for an account's feature vector (:data:`~distillguard.detect.features.FEATURES` order)."""

    def __init__(
        self,
        max_iter: int = 150,
        learning_rate: float = 0.08,
        max_leaf_nodes: int = 31,
        l2_regularization: float = 1.0,
        calibration_folds: int = 3,
        random_state: int = 0,
        version: str = "risk-v1",
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.version = version

    def fit(self, X: Any, y: Any) -> RiskModel:
        X_ = np.asarray(X, dtype=np.float64)
        y_ = np.asarray(y, dtype=np.int64)
        if X_.shape[1] != len(FEATURES):
            raise ValueError(f"expected {len(FEATURES)} features, got {X_.shape[1]}")
        booster = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization,
            random_state=self.random_state,
        )
        # Isotonic calibration on held-out folds: a risk of 0.9 should mean about nine attackers in ten.
        # One booster (ensemble=False) calibrated on cross-validated predictions: a third of the prediction cost
        # of keeping one booster per fold, which matters when the gateway rescores every few milliseconds.
        self.calibrated_ = CalibratedClassifierCV(booster, method="isotonic", cv=self.calibration_folds, ensemble=False)
        self.calibrated_.fit(X_, y_)
        self.classes_ = self.calibrated_.classes_
        self.feature_names_ = list(FEATURES)
        return self

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        return np.asarray(self.calibrated_.predict_proba(np.asarray(X, dtype=np.float64)), dtype=np.float64)

    def predict(self, X: Any) -> NDArray[np.int64]:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def predict_risk(self, vectors: Sequence[Sequence[float]]) -> NDArray[np.float64]:
        return self.predict_proba(vectors)[:, 1]

    def save(self, path: Path) -> None:
        skops_io().dump(self, path)

    @classmethod
    def load(cls, path: Path | None = None) -> RiskModel:
        """Load an artefact (default: the one shipped in the package); refuses one built for other features."""
        sio = skops_io()
        if path is None:
            ref = resources.files("distillguard.detect") / "models" / DEFAULT_MODEL
            with resources.as_file(ref) as shipped:
                return cls.load(shipped)
        untrusted = sio.get_untrusted_types(file=path)
        unexpected = [t for t in untrusted if not t.startswith(("distillguard.", "sklearn.", "numpy."))]
        if unexpected:
            raise ValueError(f"{path}: refusing to load types {unexpected}")
        single_threaded_numerics()
        model: RiskModel = sio.load(path, trusted=untrusted)
        if not isinstance(model, cls):
            raise ValueError(f"{path} does not hold a RiskModel")
        if list(model.feature_names_) != list(FEATURES):
            raise ValueError(f"{path} was trained on other features; retrain with `distillguard train`")
        return model


def skops_io() -> ModuleType:
    """``skops.io``, imported without the PyTorch that scikit-learn's estimator discovery would drag in.

    Importing skops.io lists scikit-learn's estimators (``sklearn.utils.discovery.all_estimators``), which walks
    every sklearn package, the array-API shim for PyTorch included; with torch installed (the ``[hf]`` extra) that
    shim imports it, and every gateway process with detection on grew by ~200 MB (measured: 402 MB idle against
    ~200 MB without torch). With ``torch`` blocked for the duration, the shim fails to import and the walk skips
    it; torch stays importable afterwards for whoever needs it.
    """
    block = "skops.io" not in sys.modules and "torch" not in sys.modules
    if block:
        sys.modules["torch"] = None  # type: ignore[assignment]  # "import torch" raises ImportError meanwhile
    try:
        return importlib.import_module("skops.io")
    finally:
        if block and sys.modules.get("torch", False) is None:
            del sys.modules["torch"]


def shipped_model_available() -> bool:
    return (resources.files("distillguard.detect") / "models" / DEFAULT_MODEL).is_file()


def configured_model(config: DetectConfig) -> RiskModel | None:
    """The model ``[detect] model`` names: the shipped one by default, None for "rules" (or when none is shipped)."""
    if config.model == "rules":
        return None
    if config.model is None and not shipped_model_available():
        log.warning("no risk model artefact shipped; scoring with the transparent rules only")
        return None
    return RiskModel.load(Path(config.model) if config.model else None)


def single_threaded_numerics() -> None:
    """Keep scikit-learn's OpenMP/BLAS pools to one thread in this process.

    distillguard gets parallelism from processes (analyze's parsers, gateway workers); idle OpenMP threads spin
    against those and against the event loop (measured: a one-row prediction took 345 ms under load, 16 ms pinned).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
