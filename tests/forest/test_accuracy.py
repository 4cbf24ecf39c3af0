"""Issue 2's quality bar: with identical hyperparameters, woodlot's mean test accuracy over 5
seeds is no lower than scikit-learn's minus 0.5 percentage points, and its mean log loss no
more than 5% worse."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.ensemble import RandomForestClassifier as SkForest
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

from woodlot import RandomForestClassifier

SEEDS = range(5)

CASES = {
    # the tutorial: wine, test_size=0.3, random_state=42, stratify=y; v1 and v2
    "wine v1 (100 trees, depth 4)": (load_wine, dict(n_estimators=100, max_depth=4)),
    "wine v2 (200 trees, depth 6)": (load_wine, dict(n_estimators=200, max_depth=6)),
    "breast_cancer (defaults)": (load_breast_cancer, dict()),
    "digits (defaults)": (load_digits, dict()),
}


def _scores(cls, params, split):
    X_train, X_test, y_train, y_test = split
    acc, loss = [], []
    for seed in SEEDS:
        model = cls(random_state=seed, **params).fit(X_train, y_train)
        proba = model.predict_proba(X_test)
        acc.append(accuracy_score(y_test, model.classes_[np.argmax(proba, axis=1)]))
        loss.append(log_loss(y_test, proba, labels=model.classes_))
    return float(np.mean(acc)), float(np.mean(loss))


@pytest.mark.parametrize("case", list(CASES))
def test_quality_matches_sklearn(case):
    loader, params = CASES[case]
    X, y = loader(return_X_y=True)
    split = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
    acc, loss = _scores(RandomForestClassifier, params, split)
    sk_acc, sk_loss = _scores(SkForest, params, split)
    print(f"{case}: woodlot acc {acc:.4f} loss {loss:.4f} | sklearn acc {sk_acc:.4f} loss {sk_loss:.4f}")
    assert acc >= sk_acc - 0.005, f"accuracy {acc:.4f} < sklearn {sk_acc:.4f} - 0.5 pp"
    assert loss <= 1.05 * sk_loss, f"log loss {loss:.4f} > 1.05 x sklearn {sk_loss:.4f}"
