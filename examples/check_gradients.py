"""check_gradients on a network with the whole toolbox in it.

bpcore.check_gradients compares Network.loss_and_grad (the kernels' exact
backprop) with central finite differences and returns the largest relative
error; it should be around 1e-7 or below in float64.
"""
import numpy as np
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

import bpcore

X, y = load_wine(return_X_y=True)
X = StandardScaler().fit_transform(X)[:40]
Y = np.eye(3)[y[:40]]

for act in ("relu", "tanh", "gelu", "silu"):
    net = bpcore.Network([13, 16, 16, 3], activation=act, output="softmax", loss="log_loss",
                         init="he_normal", batch_norm=True, residual=True, random_state=0)
    err = bpcore.check_gradients(net, X, Y, alpha=1e-3, training=True)
    print(f"{act:5s} batch norm + residual, log loss: max relative error {err:.2e}")
    assert err < 1e-5, err
