"""Huber regression with early stopping on a scorer.

Diabetes (scikit-learn's bundled data) with 5% of the targets corrupted by
large outliers: a Huber loss limits their pull. Early stopping holds out 10%
of the training data and stops when its mean absolute error stops improving,
keeping the best epoch's weights; the squared-error drop-in is shown beside.
Set BPCORE_EXAMPLE_QUICK=1 for a few-second run (the tests do).
"""
import os
import warnings

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_absolute_error
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from bpcore import MLPRegressor, NeuralNetRegressor

quick = os.environ.get("BPCORE_EXAMPLE_QUICK") == "1"
warnings.simplefilter("ignore", ConvergenceWarning)
X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
rng = np.random.default_rng(0)
bad = rng.random(len(y_train)) < 0.05
y_noisy = y_train + bad * rng.choice([-1, 1], len(y_train)) * 600.0

max_iter = 40 if quick else 2000
# The toolbox regressor scales y itself (target_scaling='auto'), so
# huber_delta is in standard deviations of y_noisy (145 here): 0.2 is
# about 30 in y's units.
huber = NeuralNetRegressor(
    hidden_layer_sizes=(64, 64), loss="huber", huber_delta=0.2, residual=True, clip_norm=10.0,
    learning_rate_init=0.01, early_stopping=True, scoring="neg_mean_absolute_error",
    n_iter_no_change=20, max_iter=max_iter, random_state=0,
).fit(X_train, y_noisy)
plain = MLPRegressor(hidden_layer_sizes=(64, 64), learning_rate_init=0.01, early_stopping=True,
                     n_iter_no_change=20, max_iter=max_iter, random_state=0).fit(X_train, y_noisy)

print(f"Huber + residual + clipping: stopped after {huber.n_iter_} epochs, best validation "
      f"MAE {-huber.best_validation_score_:.1f}")
print(f"test MAE  Huber {mean_absolute_error(y_test, huber.predict(X_test)):.1f}   "
      f"squared error {mean_absolute_error(y_test, plain.predict(X_test)):.1f}")
