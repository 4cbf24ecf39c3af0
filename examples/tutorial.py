"""The reference workflow, step by step, with woodlot instead of scikit-learn + joblib.

Train two random forests on the wine data, save both as versions, compare them on the same test
rows, make the better one active with the tutorial's rule (v2 if acc_v2 >= acc_v1), then roll
back to v1 and check its accuracy.

    pip install ".[examples]"              # woodlot, pandas and what runs the notebook
    python examples/tutorial.py            # store in ./models
    WOODLOT_STORE=/tmp/m python examples/tutorial.py
    python examples/tutorial.py /tmp/m
"""

import os
import sys

try:
    import pandas  # noqa: F401  (load_wine(as_frame=True) needs it)
except ImportError:
    sys.exit('The tutorial works on a pandas DataFrame: pip install ".[examples]" (or pandas) first.')

from sklearn.datasets import load_wine
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from woodlot import RandomForestClassifier, VersionStore

STORE_DIR = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("WOODLOT_STORE", "models")

# 1. Load the data as a DataFrame and split it.
data = load_wine(as_frame=True)
X, y = data.data, data.target
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, random_state=42, stratify=y
)

# 2. Train v1 and save it as the first version; it is what is deployed.
model_v1 = RandomForestClassifier(n_estimators=100, max_depth=4, random_state=42)
model_v1.fit(X_train, y_train)

store = VersionStore(STORE_DIR)  # joblib.dump(model_v1, "model_v1.pkl")
v1 = store.save(model_v1, description="100 trees, depth 4", tags={"stage": "baseline"})
store.promote(v1, reason="first deployment")
print(f"Saved {v1.name} ({v1.size:,} bytes) and made it active")

# 3. Train v2 and save it too.
model_v2 = RandomForestClassifier(n_estimators=200, max_depth=6, random_state=42)
model_v2.fit(X_train, y_train)
v2 = store.save(model_v2, description="200 trees, depth 6")  # joblib.dump(model_v2, "model_v2.pkl")
print(f"Saved {v2.name} ({v2.size:,} bytes), parent {v1.name}")

# 4. Compare both versions on the same test rows.
acc_v1 = accuracy_score(y_test, store.load(v1).predict(X_test))
acc_v2 = accuracy_score(y_test, store.load(v2).predict(X_test))
print(f"Accuracy v1: {acc_v1:.4f}")
print(f"Accuracy v2: {acc_v2:.4f}")

comparison = store.compare(X_test, y_test)  # both versions, in Rust, with statistics
print(comparison)

# 5. Make the better one active: the tutorial's rule (v2 if acc_v2 >= acc_v1), made safe.
decision = store.promote_if_better(v2, X_test, y_test, metric="accuracy", min_delta=0.0)
print(f"Decision: {decision.reason}")
print(f"Active version: {store.active.name}")

# 6. Roll back to v1 (verified before it moves) and check its accuracy.
store.rollback(to=v1, reason=f"tutorial: roll back to {v1.name}")
restored = store.load("active", verify=True)
acc_restored = accuracy_score(y_test, restored.predict(X_test))
print(f"Rolled back to {store.active.name}; its accuracy: {acc_restored:.4f}")
assert acc_restored == acc_v1

# 7. Every move is in the history.
for event in store.history():
    print(f"  #{event.seq} {event.kind:<8} {event.version or '':<4} active={event.active} {event.reason or ''}")
