"""A toolbox classifier in a Pipeline, grid-searched over dropout and batch norm.

Digits (scikit-learn's bundled 8x8 images): scale, then a two-layer network
trained by AdamW with a cosine schedule; GridSearchCV picks dropout and
batch_norm by 3-fold cross-validation, and the held-out accuracy is printed.
Set BPCORE_EXAMPLE_QUICK=1 for a few-second run (the tests do).
"""
import os
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bpcore import NeuralNetClassifier

quick = os.environ.get("BPCORE_EXAMPLE_QUICK") == "1"
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

pipe = make_pipeline(
    StandardScaler(),
    NeuralNetClassifier(hidden_layer_sizes=(128, 128), solver="adamw", learning_rate="cosine",
                        learning_rate_init=3e-3, max_iter=10 if quick else 60,
                        random_state=0),
)
# The cosine schedule anneals the rate to its minimum at exactly max_iter
# epochs, so every fit is meant to run all of them: scikit-learn's "maximum
# iterations reached" ConvergenceWarning is expected here, and silenced.
warnings.filterwarnings("ignore", category=ConvergenceWarning)
grid = GridSearchCV(pipe, {
    "neuralnetclassifier__dropout": [0.0, 0.2],
    "neuralnetclassifier__batch_norm": [False, True],
}, cv=3)
grid.fit(X_train, y_train)

for params, score in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"]):
    print(f"{params}: cv accuracy {score:.3f}")
print("best:", grid.best_params_)
print(f"held-out accuracy: {grid.score(X_test, y_test):.3f}")
