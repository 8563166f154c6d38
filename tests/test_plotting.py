"""LossCurveDisplay draws exactly the curves the fit recorded (Agg backend)."""
import doctest
import importlib.util
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning

import bpcore
from bpcore.plotting import LossCurveDisplay

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is not installed (pip install 'bpcore[plot]')",
)


@pytest.fixture
def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


@needs_matplotlib
def test_from_estimator_training_loss_only(plt, digits):
    clf = _fit(bpcore.MLPClassifier(hidden_layer_sizes=(20,), max_iter=8, random_state=0), *digits)
    fig, ax = plt.subplots()
    display = LossCurveDisplay.from_estimator(clf, ax=ax)

    assert display.ax_ is ax and display.figure_ is fig
    np.testing.assert_array_equal(display.line_.get_ydata(), clf.loss_curve_)
    np.testing.assert_array_equal(display.line_.get_xdata(), np.arange(1, 9))
    assert clf.validation_scores_ is None
    assert display.val_score_line_ is None and display.score_ax_ is None
    assert display.val_loss_line_ is None and display.lr_line_ is None
    assert _legend(ax) == ["training loss"]
    assert ax.get_title() == "MLPClassifier"
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"


@needs_matplotlib
def test_from_estimator_early_stopping_score_on_twin_axis(plt, digits):
    clf = _fit(
        bpcore.MLPClassifier(hidden_layer_sizes=(20,), max_iter=12, early_stopping=True, random_state=0),
        *digits,
    )
    display = LossCurveDisplay.from_estimator(clf, name="digits")

    assert len(clf.validation_scores_) == len(clf.loss_curve_)
    np.testing.assert_array_equal(display.line_.get_ydata(), clf.loss_curve_)
    np.testing.assert_array_equal(display.val_score_line_.get_ydata(), clf.validation_scores_)
    # The score lives on a twin of the loss axes: same x axis, own y axis.
    assert display.score_ax_ is not display.ax_
    assert display.score_ax_.get_shared_x_axes().joined(display.score_ax_, display.ax_)
    assert display.score_ax_.get_ylabel() == "validation score"
    assert _legend(display.ax_) == ["training loss", "validation score"]
    assert display.figure_.get_suptitle() == "digits"  # its own figure: the figure's title
    assert display.figure_ is display.ax_.figure


@needs_matplotlib
def test_from_estimator_with_history(plt):
    n = 6
    history = SimpleNamespace(
        loss=list(np.linspace(1.0, 0.4, n)),
        val_loss=list(np.linspace(1.1, 0.6, n)),
        val_score=list(np.linspace(0.5, 0.8, n)),
        lr=[1e-2 * 0.5**i for i in range(n)],
        epoch_time=[0.01] * n,
    )
    est = SimpleNamespace(
        loss_curve_=history.loss, validation_scores_=history.val_score, history_=history
    )
    display = LossCurveDisplay.from_estimator(est)

    np.testing.assert_array_equal(display.line_.get_ydata(), history.loss)
    np.testing.assert_array_equal(display.val_loss_line_.get_ydata(), history.val_loss)
    np.testing.assert_array_equal(display.val_score_line_.get_ydata(), history.val_score)
    np.testing.assert_array_equal(display.lr_line_.get_ydata(), history.lr)
    # Losses share the left axis, the score has a right axis, the learning
    # rate its own panel below on the same epochs.
    assert display.val_loss_line_.axes is display.ax_
    assert display.lr_ax_ not in (display.ax_, display.score_ax_)
    assert display.lr_ax_.get_shared_x_axes().joined(display.lr_ax_, display.ax_)
    assert display.lr_ax_.get_position().y1 < display.ax_.get_position().y0
    assert display.lr_ax_.get_xlabel() == "epoch" and display.ax_.get_xlabel() == ""
    assert display.lr_ax_.get_yscale() == "linear"  # a factor of 32: linear
    assert _legend(display.ax_) == [
        "training loss", "validation loss", "validation score", "learning rate"
    ]
    assert display.figure_.get_suptitle() == "SimpleNamespace"


@needs_matplotlib
def test_from_estimator_history_fills_missing_curves(plt):
    """Without loss_curve_ / validation_scores_, the history's curves are used;
    empty lists (no validation data) draw nothing."""
    history = SimpleNamespace(loss=[3.0, 2.0, 1.5], val_loss=[], val_score=[],
                              lr=[0.1, 0.1, 0.1], epoch_time=[0.1, 0.1, 0.1])
    display = LossCurveDisplay.from_estimator(SimpleNamespace(history_=history))
    np.testing.assert_array_equal(display.line_.get_ydata(), history.loss)
    assert display.val_loss_line_ is None and display.val_score_line_ is None
    np.testing.assert_array_equal(display.lr_line_.get_ydata(), history.lr)
    assert display.score_ax_ is None and display.lr_ax_ is not None


@needs_matplotlib
def test_from_history(plt):
    history = SimpleNamespace(loss=(0.9, 0.7), val_loss=[1.0, 0.8], lr=[0.1, 0.05])
    display = LossCurveDisplay.from_history(history, name="core API")
    np.testing.assert_array_equal(display.val_loss_line_.get_ydata(), [1.0, 0.8])
    assert display.val_score_line_ is None
    assert display.figure_.get_suptitle() == "core API"


@needs_matplotlib
def test_sklearn_estimator_works_too(plt):
    from sklearn.neural_network import MLPRegressor

    X, y = make_regression(200, 5, random_state=0)
    reg = _fit(MLPRegressor(hidden_layer_sizes=(10,), max_iter=5, early_stopping=True, random_state=0), X, y)
    display = LossCurveDisplay.from_estimator(reg)
    np.testing.assert_array_equal(display.line_.get_ydata(), reg.loss_curve_)
    np.testing.assert_array_equal(display.val_score_line_.get_ydata(), reg.validation_scores_)


@needs_matplotlib
def test_lbfgs_has_no_curve(plt, digits):
    clf = _fit(bpcore.MLPClassifier(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=5, random_state=0), *digits)
    with pytest.raises(ValueError, match="MLPClassifier has no learning curve.*'lbfgs'"):
        LossCurveDisplay.from_estimator(clf)


@needs_matplotlib
def test_bad_curves(plt):
    with pytest.raises(ValueError, match="val_score has 2 values but the training loss has 3"):
        LossCurveDisplay(loss=[1, 2, 3], val_score=[0.1, 0.2]).plot()
    with pytest.raises(ValueError, match="at least one epoch"):
        LossCurveDisplay(loss=[]).plot()
    with pytest.raises(ValueError, match=r"one value per epoch \(1-D\)"):
        LossCurveDisplay(loss=[[1, 2]]).plot()
    with pytest.raises(TypeError, match="expects a bpcore.History"):
        LossCurveDisplay.from_history([1.0, 2.0])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match=r"requires matplotlib.*pip install 'bpcore\[plot\]'"):
        LossCurveDisplay(loss=[1.0, 0.5]).plot()
    with pytest.raises(ImportError, match=r"from_estimator requires matplotlib"):
        LossCurveDisplay.from_estimator(SimpleNamespace(loss_curve_=[1.0]))


@needs_matplotlib
def test_docstring_examples(plt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = doctest.testmod(bpcore.plotting, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result


@needs_matplotlib
def test_real_history_object(plt):
    """bpcore.callbacks.History, filled as the training loop fills it."""
    from bpcore.callbacks import History

    history = History()
    for epoch in range(4):
        history.append({"loss": 1.0 / (epoch + 1), "val_loss": 1.2 / (epoch + 1),
                        "lr": 0.1 * 0.5**epoch, "epoch_time": 0.01})
    display = LossCurveDisplay.from_history(history)
    np.testing.assert_array_equal(display.line_.get_ydata(), history.loss)
    np.testing.assert_array_equal(display.val_loss_line_.get_ydata(), history.val_loss)
    np.testing.assert_array_equal(display.lr_line_.get_ydata(), history.lr)
    assert history.val_score == [] and display.val_score_line_ is None

    est = SimpleNamespace(loss_curve_=list(history.loss), validation_scores_=None,
                          history_=history)
    display = LossCurveDisplay.from_estimator(est)
    np.testing.assert_array_equal(display.val_loss_line_.get_ydata(), history.val_loss)
    assert display.val_score_line_ is None


@needs_matplotlib
def test_from_history_of_train(plt):
    """The History that bpcore.train returns, with validation data and a schedule."""
    from bpcore.schedules import ExponentialLR

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    Y = X @ rng.standard_normal((4, 1))
    net = bpcore.Network([4, 8, 1], random_state=0)
    history = bpcore.train(net, X[:100], Y[:100], optimizer=bpcore.Adam(), epochs=4,
                           schedule=ExponentialLR(gamma=0.5),
                           validation_data=(X[100:], Y[100:]), random_state=0)
    display = LossCurveDisplay.from_history(history)
    np.testing.assert_array_equal(display.line_.get_ydata(), history.loss)
    np.testing.assert_array_equal(display.val_loss_line_.get_ydata(), history.val_loss)
    np.testing.assert_allclose(display.lr_line_.get_ydata(), 1e-3 * 0.5 ** np.arange(4))


def _inside(inner, outer, slack=1.0):
    return (inner.x0 >= outer.x0 - slack and inner.y0 >= outer.y0 - slack
            and inner.x1 <= outer.x1 + slack and inner.y1 <= outer.y1 + slack)


@needs_matplotlib
@pytest.mark.parametrize("own_figure", [True, False])
def test_every_artist_inside_the_canvas_and_legend_clear_of_curves(plt, own_figure):
    """A plain savefig shows every axis, label and legend entry (nothing drawn
    outside the canvas), and the legend covers no axes, hence no curve."""
    n = 30
    history = SimpleNamespace(
        loss=list(np.linspace(2.0, 0.4, n)), val_loss=list(np.linspace(2.1, 0.5, n)),
        val_score=list(np.linspace(0.1, 0.95, n)), lr=list(1e-3 * 0.8 ** np.arange(n)),
    )
    if own_figure:
        display = LossCurveDisplay.from_history(history, name="a fairly long model title")
    else:
        fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
        display = LossCurveDisplay.from_history(history, ax=axes[1], name="title")
    fig = display.figure_
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    for ax in (display.ax_, display.score_ax_, display.lr_ax_):
        assert _inside(ax.get_tightbbox(renderer), canvas), ax
    legend = display.ax_.get_legend()
    legend_box = legend.get_window_extent(renderer)
    assert _inside(legend_box, canvas)
    assert len(legend.get_texts()) == 4
    for text in legend.get_texts():
        assert _inside(text.get_window_extent(renderer), canvas), text.get_text()
    for ax in (display.ax_, display.lr_ax_):  # the score axes is the loss axes' twin
        assert not legend_box.overlaps(ax.bbox), "the legend covers a plot area"
    title = fig._suptitle if own_figure else display.ax_.title
    title_box = title.get_window_extent(renderer)
    assert _inside(title_box, canvas) and not title_box.overlaps(legend_box)
    # The rate spans a factor of ~600 here: drawn on a log scale.
    assert display.lr_ax_.get_yscale() == "log"
